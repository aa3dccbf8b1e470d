"""`archipel worker-sim` against the official `ollama` client: the simulator must pass for Ollama.

The simulator runs in-process, on an event loop in a background thread, on free loopback ports.
Every test starts its own simulator (cheap) so state such as pulled models never leaks.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import ollama
import pytest

from infrastructure.worker_sim import (
    DEFAULT_MODELS,
    INFLIGHT_HEADER,
    SimOptions,
    WorkerSim,
)
from tests.e2e.sim import free_ports

CHAT_MODEL = "llama3.2:1b"
EMBED_MODEL = "nomic-embed-text:latest"
FAST = SimOptions(tokens_per_second=2000.0, first_token_ms=0.0)
HELLO = [{"role": "user", "content": "hello"}]

StartSim = Callable[..., WorkerSim]


@pytest.fixture(scope="module")
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="worker-sim", daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)
    loop.close()


async def _cancel_stuck_handlers() -> None:
    """Cancel whatever still runs on the loop (handlers of "hung" workers never finish by
    themselves, and `WorkerSim.stop` would wait aiohttp's 60 s shutdown timeout for them)."""
    tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


@pytest.fixture
def start_sim(loop: asyncio.AbstractEventLoop) -> Iterator[StartSim]:
    started: list[WorkerSim] = []

    def start(
        count: int = 1, options: SimOptions = FAST, vary_speed: bool = False, **kwargs: Any
    ) -> WorkerSim:
        sim = WorkerSim(
            "127.0.0.1", free_ports(count), count, options, vary_speed=vary_speed, **kwargs
        )
        asyncio.run_coroutine_threadsafe(sim.start(), loop).result(timeout=10)
        started.append(sim)
        return sim

    yield start
    asyncio.run_coroutine_threadsafe(_cancel_stuck_handlers(), loop).result(timeout=10)
    for sim in started:
        asyncio.run_coroutine_threadsafe(sim.stop(), loop).result(timeout=10)


@pytest.fixture
def url(start_sim: StartSim) -> str:
    return start_sim().urls[0]


@pytest.fixture
def client(url: str) -> Iterator[ollama.Client]:
    with ollama.Client(host=url, timeout=10) as client:
        yield client


def write_gguf(path: Path, arch: str = "llama") -> Path:
    """A real (tiny) GGUF file written with llama.cpp's `gguf` package."""
    import gguf

    writer = gguf.GGUFWriter(str(path), arch=arch)
    writer.add_name("tiny")
    writer.add_context_length(128)
    writer.add_block_count(1)
    writer.add_tensor("token_embd.weight", np.arange(32, dtype=np.float32).reshape(4, 8))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def model_names(client: ollama.Client) -> list[str]:
    return [m.model or "" for m in client.list().models]


# --- 1. list, ps, show ----------------------------------------------------------------------


def test_list_shows_the_default_models_with_details(client: ollama.Client) -> None:
    models = {m.model: m for m in client.list().models}
    assert set(models) == {m.name for m in DEFAULT_MODELS}
    for expected in DEFAULT_MODELS:
        listed = models[expected.name]
        assert listed.details is not None
        assert listed.details.family == expected.family
        assert listed.details.quantization_level == expected.quantization
        assert listed.details.parameter_size == expected.parameter_size
        assert listed.size == expected.size
        assert listed.digest == expected.digest
        assert listed.modified_at is not None


def test_version_and_root_answer_like_ollama(url: str) -> None:
    assert httpx.get(url).text == "Ollama is running"
    assert "version" in httpx.get(f"{url}/api/version").json()


def test_ps_is_empty_at_first_and_shows_a_model_after_a_chat(client: ollama.Client) -> None:
    assert list(client.ps().models) == []
    client.chat(model=CHAT_MODEL, messages=HELLO)
    running = client.ps().models
    assert [m.model for m in running] == [CHAT_MODEL]
    assert running[0].expires_at is not None
    assert running[0].size_vram == running[0].size
    assert running[0].details is not None
    assert running[0].details.family == "llama"


def test_show_gives_capabilities(client: ollama.Client) -> None:
    chat = client.show(CHAT_MODEL)
    assert chat.capabilities == ["completion"]
    assert chat.details is not None
    assert chat.details.family == "llama"
    assert chat.modelinfo is not None
    assert chat.modelinfo["general.architecture"] == "llama"

    embed = client.show(EMBED_MODEL)
    assert embed.capabilities == ["embedding"]
    assert embed.modelinfo is not None
    assert embed.modelinfo["nomic-bert.embedding_length"] == 768

    # A name without a tag means ":latest", as in Ollama.
    assert client.show("nomic-embed-text").capabilities == ["embedding"]

    with pytest.raises(ollama.ResponseError) as error:
        client.show("no-such-model:1b")
    assert error.value.status_code == 404


# --- 2. chat and generate -------------------------------------------------------------------


def test_chat_is_deterministic(client: ollama.Client) -> None:
    first = client.chat(model=CHAT_MODEL, messages=HELLO)
    again = client.chat(model=CHAT_MODEL, messages=HELLO)
    other = client.chat(model=CHAT_MODEL, messages=[{"role": "user", "content": "goodbye"}])
    assert first.message.role == "assistant"
    assert first.message.content
    assert first.message.content == again.message.content
    assert first.message.content != other.message.content
    assert first.done is True
    assert first.done_reason == "stop"
    assert first.eval_count == len((first.message.content or "").split())
    assert first.total_duration is not None
    assert first.prompt_eval_count is not None


def test_chat_streaming_matches_non_streaming(client: ollama.Client) -> None:
    whole = client.chat(model=CHAT_MODEL, messages=HELLO).message.content
    chunks = list(client.chat(model=CHAT_MODEL, messages=HELLO, stream=True))
    tokens, final = chunks[:-1], chunks[-1]
    assert tokens
    assert all(not c.done for c in tokens)
    assert final.done is True
    assert final.done_reason == "stop"
    assert final.eval_count == len(tokens)
    assert "".join(c.message.content or "" for c in chunks) == whole
    assert all(c.model == CHAT_MODEL for c in chunks)
    assert all(c.created_at for c in chunks)


def test_generate_streaming_and_not(client: ollama.Client) -> None:
    whole = client.generate(model=CHAT_MODEL, prompt="why is the sky blue?")
    again = client.generate(model=CHAT_MODEL, prompt="why is the sky blue?")
    other = client.generate(model=CHAT_MODEL, prompt="why is the sea blue?")
    assert whole.response
    assert whole.response == again.response
    assert whole.response != other.response
    assert whole.done is True

    chunks = list(client.generate(model=CHAT_MODEL, prompt="why is the sky blue?", stream=True))
    assert chunks[-1].done is True
    assert chunks[-1].eval_count == len(chunks) - 1
    assert "".join(c.response for c in chunks) == whole.response


def test_num_predict_limits_the_tokens(client: ollama.Client) -> None:
    chunks = list(
        client.chat(model=CHAT_MODEL, messages=HELLO, stream=True, options={"num_predict": 5})
    )
    assert len(chunks) == 6
    assert chunks[-1].eval_count == 5
    answer = client.generate(model=CHAT_MODEL, prompt="count", options={"num_predict": 5})
    assert answer.eval_count == 5
    assert len(answer.response.split()) == 5


def test_chat_with_an_embedding_model_is_a_400(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as error:
        client.chat(model=EMBED_MODEL, messages=HELLO)
    assert error.value.status_code == 400
    assert "does not support chat" in error.value.error
    with pytest.raises(ollama.ResponseError) as error:
        client.generate(model=EMBED_MODEL, prompt="hi")
    assert error.value.status_code == 400


def test_unknown_model_is_a_404(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as error:
        client.chat(model="no-such-model:7b", messages=HELLO)
    assert error.value.status_code == 404
    assert "not found" in error.value.error
    with pytest.raises(ollama.ResponseError) as error:
        next(iter(client.chat(model="no-such-model:7b", messages=HELLO, stream=True)))
    assert error.value.status_code == 404


# --- 3. embed -------------------------------------------------------------------------------


def test_embed_gives_deterministic_unit_vectors(client: ollama.Client) -> None:
    one = client.embed(model=EMBED_MODEL, input="the quick brown fox")
    again = client.embed(model=EMBED_MODEL, input="the quick brown fox")
    other = client.embed(model=EMBED_MODEL, input="a lazy dog")
    assert one.model == EMBED_MODEL
    assert len(one.embeddings) == 1
    vector = list(one.embeddings[0])
    assert len(vector) == 768
    assert math.isclose(math.sqrt(sum(v * v for v in vector)), 1.0, abs_tol=1e-4)
    assert vector == list(again.embeddings[0])
    assert vector != list(other.embeddings[0])

    batch = client.embed(model=EMBED_MODEL, input=["the quick brown fox", "a lazy dog", "x"])
    assert len(batch.embeddings) == 3
    assert all(len(v) == 768 for v in batch.embeddings)
    assert list(batch.embeddings[0]) == vector
    assert list(batch.embeddings[1]) == list(other.embeddings[0])


# --- 4. pull --------------------------------------------------------------------------------


def test_pull_streams_progress_and_installs_the_model(client: ollama.Client) -> None:
    assert "phi3:mini" not in model_names(client)
    progress = list(client.pull("phi3:mini", stream=True))
    statuses = [p.status for p in progress]
    assert statuses[0] == "pulling manifest"
    assert statuses[-1] == "success"
    downloads = [p for p in progress if p.total]
    assert downloads
    assert all(p.completed is not None and 0 < p.completed <= (p.total or 0) for p in downloads)
    assert downloads[-1].completed == downloads[-1].total
    assert [p.completed for p in downloads] == sorted(p.completed or 0 for p in downloads)
    assert "phi3:mini" in model_names(client)
    assert client.show("phi3:mini").details.family == "phi3"  # type: ignore[union-attr]

    assert client.pull("gemma2:2b").status == "success"  # not streamed
    assert "gemma2:2b" in model_names(client)


def test_pull_of_an_unknown_model_fails(client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as error:
        list(client.pull("no-such-model:13b", stream=True))
    assert error.value.status_code == 500
    assert "file does not exist" in error.value.error
    with pytest.raises(ollama.ResponseError):
        client.pull("no-such-model:13b")
    assert "no-such-model:13b" not in model_names(client)


# --- 5. blobs, create, delete ---------------------------------------------------------------


def test_create_from_an_uploaded_gguf_blob(client: ollama.Client, tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "tiny.gguf")
    digest = client.create_blob(path)
    assert digest == f"sha256:{hashlib.sha256(path.read_bytes()).hexdigest()}"

    assert client.create(model="tiny:latest", files={"tiny.gguf": digest}).status == "success"
    models = {m.model: m for m in client.list().models}
    assert "tiny:latest" in models
    assert models["tiny:latest"].details is not None
    assert models["tiny:latest"].details.family == "llama"
    assert models["tiny:latest"].size == path.stat().st_size

    # Streamed, under a name without a tag; the new model then answers chats.
    progress = list(client.create(model="tiny2", files={"tiny.gguf": digest}, stream=True))
    assert progress[-1].status == "success"
    assert "tiny2:latest" in model_names(client)
    assert client.chat(model="tiny2", messages=HELLO).message.content


def test_create_reads_the_architecture_from_the_gguf(client: ollama.Client, tmp_path: Path) -> None:
    digest = client.create_blob(write_gguf(tmp_path / "q.gguf", arch="qwen2"))
    client.create(model="tiny-qwen:1b", files={"q.gguf": digest})
    assert client.show("tiny-qwen:1b").details.family == "qwen2"  # type: ignore[union-attr]


def test_create_from_an_existing_model(client: ollama.Client) -> None:
    assert client.create(model="my-llama", from_=CHAT_MODEL).status == "success"
    assert "my-llama:latest" in model_names(client)
    with pytest.raises(ollama.ResponseError) as error:
        client.create(model="nope", from_="no-such-model:1b")
    assert error.value.status_code == 404


def test_blob_upload_checks_the_digest(url: str, client: ollama.Client, tmp_path: Path) -> None:
    wrong = "sha256:" + "0" * 64
    answer = httpx.post(f"{url}/api/blobs/{wrong}", content=b"not what the digest says")
    assert answer.status_code == 400
    assert "mismatch" in answer.json()["error"]
    assert httpx.head(f"{url}/api/blobs/{wrong}").status_code == 404

    assert httpx.post(f"{url}/api/blobs/md5:abc", content=b"x").status_code == 400

    digest = client.create_blob(write_gguf(tmp_path / "tiny.gguf"))
    assert httpx.head(f"{url}/api/blobs/{digest}").status_code == 200
    unknown = "sha256:" + hashlib.sha256(b"never uploaded").hexdigest()
    assert httpx.head(f"{url}/api/blobs/{unknown}").status_code == 404

    with pytest.raises(ollama.ResponseError) as error:
        client.create(model="ghost", files={"ghost.gguf": unknown})
    assert error.value.status_code == 400


def test_create_from_a_non_gguf_blob_fails(client: ollama.Client, tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"these are not the weights you are looking for\n" * 10)
    digest = client.create_blob(path)
    with pytest.raises(ollama.ResponseError) as error:
        client.create(model="notes", files={"notes.txt": digest})
    assert error.value.status_code == 400
    assert "not a GGUF" in error.value.error
    assert "notes:latest" not in model_names(client)


def test_delete_removes_a_model(client: ollama.Client) -> None:
    client.chat(model=CHAT_MODEL, messages=HELLO)
    assert client.delete(CHAT_MODEL).status == "success"
    assert CHAT_MODEL not in model_names(client)
    assert CHAT_MODEL not in [m.model for m in client.ps().models]
    with pytest.raises(ollama.ResponseError) as error:
        client.chat(model=CHAT_MODEL, messages=HELLO)
    assert error.value.status_code == 404
    with pytest.raises(ollama.ResponseError) as error:
        client.delete(CHAT_MODEL)
    assert error.value.status_code == 404


# --- 6. options -----------------------------------------------------------------------------


def test_first_token_latency_and_speed(start_sim: StartSim) -> None:
    sim = start_sim(options=SimOptions(tokens_per_second=20.0, first_token_ms=300.0))
    client = ollama.Client(host=sim.urls[0], timeout=10)
    started = time.monotonic()
    stream = iter(
        client.chat(model=CHAT_MODEL, messages=HELLO, stream=True, options={"num_predict": 11})
    )
    next(stream)
    first = time.monotonic() - started
    chunks = list(stream)
    total = time.monotonic() - started
    assert first >= 0.25
    assert first < 2.0
    # 10 gaps of 1/20 s between the 11 tokens, after the first one.
    assert total - first >= 0.4
    assert chunks[-1].done is True
    assert chunks[-1].eval_count == 11
    assert (chunks[-1].total_duration or 0) >= 0.65e9


def test_failure_rate_one_fails_every_call(start_sim: StartSim) -> None:
    sim = start_sim(options=SimOptions(failure_rate=1.0, first_token_ms=0.0))
    client = ollama.Client(host=sim.urls[0], timeout=10)
    calls: list[Callable[[], object]] = [
        client.list,
        client.ps,
        lambda: client.show(CHAT_MODEL),
        lambda: client.chat(model=CHAT_MODEL, messages=HELLO),
        lambda: list(client.chat(model=CHAT_MODEL, messages=HELLO, stream=True)),
        lambda: client.generate(model=CHAT_MODEL, prompt="hi"),
        lambda: client.embed(model=EMBED_MODEL, input="hi"),
        lambda: client.pull("phi3:mini"),
    ]
    for _ in range(3):
        for call in calls:
            with pytest.raises(ollama.ResponseError) as error:
                call()
            assert error.value.status_code == 500
            assert error.value.error == "simulated failure"


def test_failure_rate_half_fails_some_calls(start_sim: StartSim) -> None:
    sim = start_sim(options=SimOptions(failure_rate=0.5, first_token_ms=0.0))
    client = ollama.Client(host=sim.urls[0], timeout=10)
    statuses = []
    for _ in range(60):
        try:
            client.list()
            statuses.append(200)
        except ollama.ResponseError as error:
            statuses.append(error.status_code)
    assert set(statuses) == {200, 500}
    assert 5 < statuses.count(500) < 55


def test_hung_worker_makes_the_client_time_out(start_sim: StartSim) -> None:
    sim = start_sim(options=SimOptions(mode="hung"))
    client = ollama.Client(host=sim.urls[0], timeout=0.5)
    # The ollama client only translates connection errors; a read timeout surfaces as httpx's.
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        client.list()
    assert 0.4 < time.monotonic() - started < 5
    with pytest.raises(httpx.ReadTimeout):
        next(iter(client.chat(model=CHAT_MODEL, messages=HELLO, stream=True)))
    # The port accepts connections: a hung worker, not a dead one.
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(f"{sim.urls[0]}/api/version", timeout=0.3)


def test_slow_mode_delays_every_answer(start_sim: StartSim) -> None:
    sim = start_sim(options=SimOptions(mode="slow", slow_delay_ms=300.0, first_token_ms=0.0))
    client = ollama.Client(host=sim.urls[0], timeout=10)
    started = time.monotonic()
    assert model_names(client)
    assert time.monotonic() - started >= 0.25


def test_sim_mode_switches_a_worker_between_hung_and_normal(start_sim: StartSim) -> None:
    sim = start_sim(count=2)
    url, neighbour = sim.urls
    client = ollama.Client(host=url, timeout=0.5)
    assert model_names(client)

    answer = httpx.post(f"{url}/_sim/mode", json={"mode": "hung"})
    assert answer.status_code == 200
    assert answer.json() == {"mode": "hung"}
    with pytest.raises(httpx.ReadTimeout):
        client.list()
    assert model_names(ollama.Client(host=neighbour, timeout=2))  # only that worker hangs

    assert httpx.post(f"{url}/_sim/mode", json={"mode": "normal"}).status_code == 200
    assert model_names(client)
    assert client.chat(model=CHAT_MODEL, messages=HELLO).done is True

    bad = httpx.post(f"{url}/_sim/mode", json={"mode": "asleep"})
    assert bad.status_code == 400
    assert "mode must be one of" in bad.json()["error"]


def test_vary_speed_spreads_the_workers_speeds(start_sim: StartSim) -> None:
    sim = start_sim(
        count=3, options=SimOptions(tokens_per_second=100.0, first_token_ms=0.0), vary_speed=True
    )
    speeds = [w.options.tokens_per_second for w in sim.workers.values()]
    assert speeds == sorted(speeds)
    assert len(set(speeds)) == 3
    assert speeds[0] == pytest.approx(50.0)
    assert speeds[-1] == pytest.approx(200.0)

    # And it shows: the same 15 tokens take the slowest worker clearly longer.
    elapsed = []
    for url in (sim.urls[0], sim.urls[-1]):
        client = ollama.Client(host=url, timeout=10)
        started = time.monotonic()
        answer = client.chat(model=CHAT_MODEL, messages=HELLO, options={"num_predict": 15})
        elapsed.append(time.monotonic() - started)
        assert answer.eval_count == 15
    assert elapsed[0] >= 0.25  # 14 gaps of 1/50 s
    assert elapsed[0] > elapsed[1] * 1.5


def test_without_vary_speed_all_workers_share_the_options(start_sim: StartSim) -> None:
    sim = start_sim(count=3)
    assert {w.options for w in sim.workers.values()} == {FAST}


# --- 7. many workers in one process ---------------------------------------------------------


def test_workers_are_independent(start_sim: StartSim, tmp_path: Path) -> None:
    sim = start_sim(count=3)
    one, two, three = (ollama.Client(host=u, timeout=10) for u in sim.urls)
    assert all(u.startswith("http://127.0.0.1:") for u in sim.urls)

    list(one.pull("phi3:mini", stream=True))
    assert "phi3:mini" in model_names(one)
    assert "phi3:mini" not in model_names(two)

    two.delete(CHAT_MODEL)
    assert CHAT_MODEL in model_names(one)
    assert CHAT_MODEL not in model_names(two)

    two.chat(model="qwen2.5:0.5b", messages=HELLO)
    assert [m.model for m in two.ps().models] == ["qwen2.5:0.5b"]
    assert list(one.ps().models) == []

    digest = one.create_blob(write_gguf(tmp_path / "tiny.gguf"))
    assert httpx.head(f"{sim.urls[0]}/api/blobs/{digest}").status_code == 200
    assert httpx.head(f"{sim.urls[2]}/api/blobs/{digest}").status_code == 404
    with pytest.raises(ollama.ResponseError):
        three.create(model="tiny", files={"tiny.gguf": digest})


def test_inflight_header_counts_a_running_stream(start_sim: StartSim) -> None:
    sim = start_sim(count=2, options=SimOptions(tokens_per_second=10.0, first_token_ms=0.0))
    url, neighbour = sim.urls
    assert httpx.get(f"{url}/api/ps").headers[INFLIGHT_HEADER] == "0"

    first_chunk = threading.Event()
    finish = threading.Event()
    seen: dict[str, Any] = {}

    def slow_chat() -> None:
        body = {"model": CHAT_MODEL, "messages": HELLO, "options": {"num_predict": 30}}
        with httpx.stream("POST", f"{url}/api/chat", json=body, timeout=10) as response:
            seen["header"] = response.headers[INFLIGHT_HEADER]
            lines = response.iter_lines()
            next(lines)
            first_chunk.set()
            finish.wait(10)  # stop reading: the rest arrives later or is dropped on close

    thread = threading.Thread(target=slow_chat, daemon=True)
    thread.start()
    try:
        assert first_chunk.wait(10)
        assert seen["header"] == "1"  # a stream counts itself
        answer = httpx.get(f"{url}/api/ps")
        assert answer.headers[INFLIGHT_HEADER] == "1"
        assert [m["model"] for m in answer.json()["models"]] == [CHAT_MODEL]
        assert httpx.get(f"{neighbour}/api/ps").headers[INFLIGHT_HEADER] == "0"
    finally:
        finish.set()
        thread.join(10)
    deadline = time.monotonic() + 5
    while httpx.get(f"{url}/api/ps").headers[INFLIGHT_HEADER] != "0":
        assert time.monotonic() < deadline, "the in-flight count never went back to 0"
        time.sleep(0.1)


def test_async_client_with_concurrent_requests(start_sim: StartSim) -> None:
    sim = start_sim(options=SimOptions(tokens_per_second=50.0, first_token_ms=100.0))

    async def run() -> None:
        client = ollama.AsyncClient(host=sim.urls[0], timeout=10)
        listed = await client.list()
        assert {m.model for m in listed.models} == {m.name for m in DEFAULT_MODELS}

        prompts = [f"question {i}" for i in range(8)]
        started = time.monotonic()
        answers = await asyncio.gather(
            *(
                client.generate(model=CHAT_MODEL, prompt=p, options={"num_predict": 10})
                for p in prompts
            )
        )
        elapsed = time.monotonic() - started
        assert all(a.eval_count == 10 for a in answers)
        assert len({a.response for a in answers}) == len(prompts)
        # Eight requests of ~0.28 s each served concurrently, not one after another.
        assert elapsed < 1.5

        chunks = [c async for c in await client.chat(model=CHAT_MODEL, messages=HELLO, stream=True)]
        assert chunks[-1].done is True
        assert chunks[-1].eval_count == len(chunks) - 1
        again = await client.chat(model=CHAT_MODEL, messages=HELLO)
        assert "".join(c.message.content or "" for c in chunks) == again.message.content

        embedded = await client.embed(model=EMBED_MODEL, input=["a", "b"])
        assert [len(v) for v in embedded.embeddings] == [768, 768]
        with pytest.raises(ollama.ResponseError) as error:
            await client.chat(model="no-such-model:1b", messages=HELLO)
        assert error.value.status_code == 404
        await client._client.aclose()

    asyncio.run(run())


# --- stopping -------------------------------------------------------------------------------


def test_stop_is_prompt_after_a_hung_request(loop: asyncio.AbstractEventLoop) -> None:
    sim = WorkerSim("127.0.0.1", free_ports(1), 1, SimOptions(mode="hung"))
    asyncio.run_coroutine_threadsafe(sim.start(), loop).result(timeout=10)
    stopping = None
    try:
        with pytest.raises(httpx.ReadTimeout):
            ollama.Client(host=sim.urls[0], timeout=0.3).list()
        stopping = asyncio.run_coroutine_threadsafe(sim.stop(), loop)
        stopping.result(timeout=3)
    finally:
        if stopping is not None and not stopping.done():
            stopping.cancel()
        asyncio.run_coroutine_threadsafe(_cancel_stuck_handlers(), loop).result(timeout=10)
        asyncio.run_coroutine_threadsafe(sim.stop(), loop).result(timeout=10)
