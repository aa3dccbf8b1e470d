"""The model catalog over the API: resumable GGUF uploads, assignment, deployment to worker-sim."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import ollama
import pytest

from tests.e2e.admin_client import AdminClient
from tests.e2e.conftest import PoolProcess
from tests.e2e.sim import SimProcess
from tests.gguf_files import write_gguf
from tests.waiting import eventually

Onboarded = tuple[PoolProcess, AdminClient]


def send(alice: AdminClient, upload_id: str, offset: int, data: bytes) -> httpx.Response:
    return alice.http.patch(
        f"/api/models/uploads/{upload_id}",
        content=data,
        headers={
            **alice.headers(),
            "Upload-Offset": str(offset),
            "Content-Type": "application/octet-stream",
        },
    )


def upload(
    alice: AdminClient,
    path: Path,
    name: str,
    tag: str = "latest",
    chunk: int = 64 * 1024,
    **extra: Any,
) -> httpx.Response:
    data = path.read_bytes()
    started = alice.post("/api/models/uploads", {"filename": path.name, "size": len(data), **extra})
    assert started.status_code == 201, started.text
    upload_id = started.json()["id"]
    for offset in range(0, len(data), chunk):
        sent = send(alice, upload_id, offset, data[offset : offset + chunk])
        assert sent.status_code == 200, sent.text
    return alice.post(
        f"/api/models/uploads/{upload_id}/complete",
        {"name": name, "tag": tag, "reason": "new model"},
    )


def leftovers(pool: PoolProcess) -> list[Path]:
    return sorted((pool.data_dir / "blobs" / "uploads").iterdir())


def test_upload_parse_and_duplicate(onboarded: Onboarded, tmp_path: Path) -> None:
    pool, alice = onboarded
    gguf = write_gguf(tmp_path / "tiny.gguf", elements=50_000)
    added = upload(alice, gguf, "tiny-llama", "q1")
    assert added.status_code == 201, added.text
    model = added.json()["model"]
    digest = "sha256:" + hashlib.sha256(gguf.read_bytes()).hexdigest()
    assert model["digest"] == digest and model["size"] == gguf.stat().st_size
    assert model["metadata"]["architecture"] == "llama"
    assert model["metadata"]["parameter_count"] == 50_048
    assert model["metadata"]["context_length"] == 2048
    assert model["metadata"]["has_chat_template"] is True
    assert model["capabilities"] == ["chat"]
    stored = pool.data_dir / "blobs" / "sha256" / digest.removeprefix("sha256:")
    assert stored.read_bytes() == gguf.read_bytes()
    assert leftovers(pool) == []

    # The same file again under the same name: recognised, no second copy, nothing new.
    again = upload(alice, gguf, "tiny-llama", "q1")
    assert again.status_code == 200 and again.json()["created"] is False
    assert len(list((pool.data_dir / "blobs" / "sha256").iterdir())) == 1
    # Other content under a taken name is refused.
    other = write_gguf(tmp_path / "other.gguf", elements=128)
    assert upload(alice, other, "tiny-llama", "q1").json()["code"] == "model_exists"


def test_bad_files_are_rejected_and_leave_nothing(onboarded: Onboarded, tmp_path: Path) -> None:
    pool, alice = onboarded
    before = set((pool.data_dir / "blobs" / "sha256").iterdir())
    text = tmp_path / "notes.gguf"
    text.write_bytes(b"this is not a model\n" * 100)
    refused = upload(alice, text, "not-a-model")
    assert refused.status_code == 422 and "not a GGUF" in refused.json()["detail"]

    good = write_gguf(tmp_path / "whole.gguf", elements=20_000).read_bytes()
    truncated = tmp_path / "cut.gguf"
    truncated.write_bytes(good[: len(good) // 2])
    broken = upload(alice, truncated, "cut-model")
    assert broken.status_code == 422 and "damaged or truncated" in broken.json()["detail"]

    whole = tmp_path / "whole.gguf"
    mismatch = upload(alice, whole, "wrong-digest", sha256="sha256:" + "0" * 64)
    assert mismatch.status_code == 422 and "digest mismatch" in mismatch.json()["detail"]

    assert leftovers(pool) == []
    assert set((pool.data_dir / "blobs" / "sha256").iterdir()) == before
    names = {m["name"] for m in alice.get("/api/models").json()["items"]}
    assert not names & {"not-a-model", "cut-model", "wrong-digest"}


class Dropped(Exception):
    """The client's connection breaks off mid-request."""


def test_a_large_upload_cut_mid_stream_resumes_intact(onboarded: Onboarded, tmp_path: Path) -> None:
    # Big enough for the server to write several buffers while it receives the next ones.
    _, alice = onboarded
    data = write_gguf(tmp_path / "large.gguf", elements=6_000_000).read_bytes()
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    started = alice.post(
        "/api/models/uploads", {"filename": "large.gguf", "size": len(data), "sha256": digest}
    )
    upload_id = started.json()["id"]
    mib = 1 << 20
    release = threading.Event()

    def body() -> Iterator[bytes]:
        for offset in range(0, 13 * mib, mib):
            if offset == 12 * mib:
                release.wait(30)  # the connection stays open, silent, until told to drop
                raise Dropped
            yield data[offset : offset + mib]

    def cut_request() -> None:
        with pytest.raises(Dropped):
            alice.http.patch(
                f"/api/models/uploads/{upload_id}",
                content=body(),
                headers={
                    **alice.headers(),
                    "Upload-Offset": "0",
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(len(data)),
                },
            )

    def offset() -> int:
        return int(alice.get(f"/api/models/uploads/{upload_id}").json()["offset"])

    sender = threading.Thread(target=cut_request)
    sender.start()
    completed = False
    try:
        try:
            # A first buffer on disk: that request holds the upload now (reading the offset
            # takes no lock). Another writer is refused meanwhile, changing nothing.
            eventually(lambda: offset() >= 4 * mib)
            busy = send(alice, upload_id, 0, b"")
            assert busy.status_code == 409, busy.text
            assert busy.json()["code"] == "upload_busy"
            assert "still being written" in busy.json()["detail"]
        finally:
            release.set()
            sender.join(30)

        # Once the broken request has finished its last write, the client resumes from there.
        def settled_offset() -> int | None:
            at = offset()
            return at if send(alice, upload_id, at, b"").status_code == 200 else None

        resumed_at = eventually(lambda: (o := settled_offset()) is not None and (o,))[0]
        assert 4 * mib <= resumed_at <= 12 * mib
        assert send(alice, upload_id, resumed_at, data[resumed_at:]).json()["offset"] == len(data)
        done = alice.post(
            f"/api/models/uploads/{upload_id}/complete", {"name": "large", "reason": "resumed"}
        )
        assert done.status_code == 201, done.text  # the server checked the whole file's digest
        assert done.json()["model"]["digest"] == digest
        completed = True
    finally:
        if not completed:  # leave no partial upload behind for the next tests of this pool
            alice.send("DELETE", f"/api/models/uploads/{upload_id}")


def test_an_upload_resumes_after_a_dropped_connection(onboarded: Onboarded, tmp_path: Path) -> None:
    _, alice = onboarded
    data = write_gguf(tmp_path / "resumable.gguf", elements=200_000).read_bytes()
    started = alice.post(
        "/api/models/uploads", {"filename": "resumable.gguf", "size": len(data)}
    ).json()
    upload_id = started["id"]
    half = len(data) // 2
    assert send(alice, upload_id, 0, data[:half]).json()["offset"] == half
    # The connection drops; the client asks where to resume, and a wrong offset is refused.
    assert alice.get(f"/api/models/uploads/{upload_id}").json()["offset"] == half
    wrong = send(alice, upload_id, 10, data[10:])
    assert wrong.status_code == 409 and wrong.headers["Upload-Offset"] == str(half)
    too_much = send(alice, upload_id, half, data[half:] + b"extra")
    assert too_much.status_code == 422
    resumed_at = alice.get(f"/api/models/uploads/{upload_id}").json()["offset"]
    assert send(alice, upload_id, resumed_at, data[resumed_at:]).json()["offset"] == len(data)
    done = alice.post(
        f"/api/models/uploads/{upload_id}/complete", {"name": "resumable", "reason": "r"}
    )
    assert done.status_code == 201, done.text
    assert done.json()["model"]["size"] == len(data)


@pytest.fixture
def sim() -> Any:
    process = SimProcess(count=2).start()
    yield process
    process.stop()


def test_assign_deploy_retry_and_unassign(onboarded: Onboarded, tmp_path: Path, sim: Any) -> None:
    _, alice = onboarded
    alice.put("/api/settings/workers.health_check_interval_seconds", {"value": 2, "reason": "r"})
    workers = [
        alice.post("/api/workers", {"url": url, "name": f"gpu-{i}", "reason": "r"}).json()
        for i, url in enumerate(sim.urls)
    ]
    gguf = write_gguf(tmp_path / "deploy.gguf", elements=300_000)
    model = upload(alice, gguf, "deploy-me").json()["model"]

    # The second worker fails every request for now: its deployment fails, then is retried.
    sim.set_mode(1, "failing")
    assigned = alice.post(
        f"/api/models/{model['id']}/assignments",
        {"worker_ids": [w["id"] for w in workers], "reason": "roll out"},
    )
    assert assigned.status_code == 200, assigned.text

    def state(worker_id: str) -> dict[str, Any] | None:
        detail = alice.get(f"/api/models/{model['id']}").json()
        return next((d for d in detail["deployments"] if d["worker_id"] == worker_id), None)

    eventually(lambda: (s := state(workers[0]["id"])) and s["state"] == "deployed")
    failed = eventually(lambda: (s := state(workers[1]["id"])) and s["state"] == "failed" and s)
    assert "HTTP 500" in failed["reason"] and failed["attempts"] >= 1
    sim.set_mode(1, "normal")
    eventually(lambda: (s := state(workers[1]["id"])) and s["state"] == "deployed", timeout=60)

    # The worker really has it, created from the pushed file: Ollama's client can chat with it.
    client = ollama.Client(host=sim.urls[1])
    assert "deploy-me:latest" in [m.model for m in client.list().models]
    assert client.chat(
        model="deploy-me:latest", messages=[{"role": "user", "content": "hi"}]
    ).message.content

    # The history comes from the audit projection, which may trail the catalog one by a beat.
    def history_kinds() -> set[tuple[str, str]]:
        history = alice.get(f"/api/models/{model['id']}").json()["history"]
        return {(e["event_type"], e["actor"]) for e in history}

    eventually(lambda: ("Deployed", "automation:deploy") in history_kinds())
    assert ("DeployFailed", "automation:deploy") in history_kinds()

    # Unassigning deletes it from the worker.
    removed = alice.post(
        f"/api/models/{model['id']}/assignments/{workers[0]['id']}/remove",
        {"reason": "not needed there"},
    )
    assert removed.status_code == 200
    eventually(
        lambda: (
            "deploy-me:latest"
            not in [m.model for m in ollama.Client(host=sim.urls[0]).list().models]
        )
    )

    # "Any N workers with room": only online ones count, and asking too many is refused.
    library = alice.post(
        "/api/models/library", {"name": "phi3", "tag": "mini", "reason": "mirror"}
    ).json()
    too_many = alice.post(f"/api/models/{library['id']}/assignments", {"count": 5, "reason": "r"})
    assert too_many.status_code == 409 and too_many.json()["code"] == "no_worker_available"
    eventually(
        lambda: all(w["status"] == "online" for w in alice.get("/api/workers").json()["items"])
    )
    pulled = alice.post(f"/api/models/{library['id']}/assignments", {"count": 1, "reason": "r"})
    assert pulled.status_code == 200
    eventually(
        lambda: any(
            d["state"] == "deployed"
            for d in alice.get(f"/api/models/{library['id']}").json()["deployments"]
        )
    )
    matrix = alice.get("/api/distribution").json()
    assert {m["reference"] for m in matrix["models"]} >= {"deploy-me:latest", "phi3:mini"}


def test_cli_upload_and_list(onboarded: Onboarded, tmp_path: Path) -> None:
    pool, alice = onboarded
    gguf = write_gguf(tmp_path / "From CLI.gguf", elements=10_000)
    added = pool.cli("models", "upload", str(gguf), "--tag", "v1", "--reason", "from the shell")
    assert added.returncode == 0, added.stderr
    assert "from-cli:v1 added: sha256:" in added.stdout
    listed = pool.cli("models", "list")
    assert "from-cli:v1" in listed.stdout
    # The same model, seen through the API, with the CLI user as its author.
    model = next(m for m in alice.get("/api/models").json()["items"] if m["name"] == "from-cli")
    assert model["added_by"].startswith("cli:")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"nope")
    refused = pool.cli("models", "upload", str(bad))
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "error: not a GGUF file (it does not start with the GGUF magic bytes)"
    )
    assert leftovers(pool) == []


def test_retired_models_and_early_name_checks(onboarded: Onboarded, tmp_path: Path) -> None:
    _, alice = onboarded
    gguf = write_gguf(tmp_path / "old.gguf", elements=2_000)
    data = gguf.read_bytes()
    started = alice.post("/api/models/uploads", {"filename": "old.gguf", "size": len(data)})
    upload_id = started.json()["id"]
    send(alice, upload_id, 0, data)
    # A bad name is refused before the file is checked or stored: the upload stays usable.
    bad_name = alice.post(
        f"/api/models/uploads/{upload_id}/complete", {"name": "Bad Name!", "reason": "r"}
    )
    assert bad_name.status_code == 422 and bad_name.json()["code"] == "invalid_model"
    assert alice.get(f"/api/models/uploads/{upload_id}").json()["offset"] == len(data)
    done = alice.post(
        f"/api/models/uploads/{upload_id}/complete", {"name": "old-model", "reason": "r"}
    )
    model_id = done.json()["model"]["id"]
    assert alice.post(f"/api/models/{model_id}/retire", {"reason": "superseded"}).status_code == 204
    retired = alice.get(f"/api/models/{model_id}")
    assert retired.status_code == 200 and retired.json()["retired"] is True
    assert model_id not in [m["id"] for m in alice.get("/api/models").json()["items"]]
    again = alice.post(f"/api/models/{model_id}/retire", {"reason": "twice"})
    assert again.status_code == 409 and again.json()["code"] == "model_state"
