"""`archipel worker-sim`: real HTTP servers that speak the Ollama API, for tests, demos and load.

One process serves many simulated workers on consecutive ports (one aiohttp application, one
listening socket per worker; a request's local port says which worker it is for). Generated
text and embeddings are deterministic for a given input; speed, first-token latency, failure
rate and "slow" or "hung" behaviour are options. The official `ollama` client works against it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import random
import shutil
import struct
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

SIM_VERSION = "0.9.0"
INFLIGHT_HEADER = "X-Sim-Inflight"  # a simulator extension: requests being served right now
MODES = ("normal", "slow", "hung", "failing")  # failing: every request answers HTTP 500

_WORDS = [
    "archipel",
    "pool",
    "worker",
    "model",
    "token",
    "cluster",
    "island",
    "harbour",
    "bridge",
    "signal",
    "river",
    "stone",
    "lantern",
    "summit",
    "meadow",
    "compass",
    "beacon",
    "ledger",
    "orbit",
    "cipher",
    "vessel",
    "atlas",
    "quarry",
    "ember",
    "willow",
    "tide",
    "granite",
    "falcon",
    "canyon",
    "prism",
    "harvest",
    "glacier",
    "spruce",
    "anchor",
    "pilot",
    "garden",
    "mosaic",
    "aurora",
]


@dataclass(frozen=True)
class SimModel:
    name: str
    family: str
    parameter_size: str
    quantization: str
    size: int
    embedding_dim: int = 0  # > 0: an embedding model
    context_length: int = 8192

    @property
    def digest(self) -> str:
        return hashlib.sha256(f"model:{self.name}".encode()).hexdigest()

    @property
    def capabilities(self) -> list[str]:
        return ["embedding"] if self.embedding_dim else ["completion"]

    def details(self) -> dict[str, Any]:
        return {
            "parent_model": "",
            "format": "gguf",
            "family": self.family,
            "families": [self.family],
            "parameter_size": self.parameter_size,
            "quantization_level": self.quantization,
        }


# What a fresh worker has installed, and what `pull` can fetch (no network: all simulated).
DEFAULT_MODELS = (
    SimModel("llama3.2:1b", "llama", "1.2B", "Q8_0", 1_321_098_329),
    SimModel("qwen2.5:0.5b", "qwen2", "494.03M", "Q4_K_M", 397_821_319),
    SimModel(
        "nomic-embed-text:latest", "nomic-bert", "137M", "F16", 274_302_450, embedding_dim=768
    ),
)
PULLABLE = (
    *DEFAULT_MODELS,
    SimModel("phi3:mini", "phi3", "3.8B", "Q4_0", 2_176_178_913),
    SimModel("gemma2:2b", "gemma2", "2.6B", "Q4_0", 1_629_518_495),
    SimModel("mistral:7b", "llama", "7.2B", "Q4_0", 4_113_301_824),
    SimModel("all-minilm:latest", "bert", "23M", "F16", 45_960_996, embedding_dim=384),
)


def model_name(name: str) -> str:
    return name if ":" in name else f"{name}:latest"


@dataclass(frozen=True)
class SimOptions:
    tokens_per_second: float = 40.0
    first_token_ms: float = 120.0
    failure_rate: float = 0.0
    mode: str = "normal"
    slow_delay_ms: float = 1500.0  # added to every answer in "slow" mode
    seed: int = 0
    keep_alive_seconds: float = 300.0


@dataclass
class SimWorker:
    port: int
    options: SimOptions
    models: dict[str, SimModel] = field(default_factory=dict)
    loaded: dict[str, datetime] = field(default_factory=dict)
    blobs: dict[str, Path] = field(default_factory=dict)
    inflight: int = 0
    random: random.Random = field(default_factory=random.Random)

    def expire_loaded(self) -> None:
        now = datetime.now(UTC)
        for name in [n for n, until in self.loaded.items() if until < now]:
            del self.loaded[name]

    def load(self, name: str) -> None:
        keep = timedelta(seconds=self.options.keep_alive_seconds)
        self.loaded[name] = datetime.now(UTC) + keep


class SimError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _seed(*parts: Any) -> int:
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def deterministic_words(model: str, prompt: Any, limit: int | None) -> list[str]:
    """The reply to `prompt`: the same words for the same model and input, every time."""
    rng = random.Random(_seed(model, prompt))
    count = limit if limit is not None and limit > 0 else 12 + rng.randrange(28)
    return [rng.choice(_WORDS) for _ in range(count)]


def deterministic_embedding(model: str, text: str, dim: int) -> list[float]:
    """A unit vector derived from the text (similar inputs are not similar: it's a stand-in)."""
    values: list[float] = []
    counter = 0
    while len(values) < dim:
        block = hashlib.sha256(f"{model}\x00{text}\x00{counter}".encode()).digest()
        values.extend(v / 2**31 for v in struct.unpack(">8i", block))
        counter += 1
    norm = math.sqrt(sum(v * v for v in values[:dim])) or 1.0
    return [round(v / norm, 7) for v in values[:dim]]


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class WorkerSim:
    """Many simulated Ollama workers behind one aiohttp application."""

    def __init__(
        self,
        host: str,
        first_port: int,
        count: int,
        options: SimOptions,
        vary_speed: bool = False,
        models: tuple[SimModel, ...] = DEFAULT_MODELS,
        blob_dir: Path | None = None,
    ) -> None:
        self.host = host
        self.workers: dict[int, SimWorker] = {}
        self._own_blob_dir = blob_dir is None  # removed at stop
        self.blob_dir = blob_dir or Path(tempfile.mkdtemp(prefix="worker-sim-blobs-"))
        for index in range(count):
            port = first_port + index
            worker_options = options
            if vary_speed:  # a spread of speeds for demos: 0.5x to 2x
                factor = 0.5 + 1.5 * index / max(1, count - 1)
                worker_options = replace(
                    options,
                    tokens_per_second=options.tokens_per_second * factor,
                    first_token_ms=options.first_token_ms / factor,
                )
            self.workers[port] = SimWorker(
                port,
                worker_options,
                models={m.name: m for m in models},
                random=random.Random(options.seed * 1_000_003 + port),
            )
        self._runner: web.AppRunner | None = None

    @property
    def urls(self) -> list[str]:
        return [f"http://{self.host}:{port}" for port in self.workers]

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1024**3)
        app.router.add_get("/", self._root)
        app.router.add_get("/api/version", self._route(self.version))
        app.router.add_get("/api/tags", self._route(self.tags))
        app.router.add_get("/api/ps", self._route(self.ps))
        app.router.add_post("/api/show", self._route(self.show))
        app.router.add_route("HEAD", "/api/blobs/{digest}", self._route(self.blob_exists))
        app.router.add_post("/api/blobs/{digest}", self._route(self.blob_upload))
        app.router.add_post("/api/create", self._route(self.create))
        app.router.add_post("/api/pull", self._route(self.pull))
        app.router.add_delete("/api/delete", self._route(self.delete))
        app.router.add_post("/api/chat", self._route(self.chat, counts=True))
        app.router.add_post("/api/generate", self._route(self.generate, counts=True))
        app.router.add_post("/api/embed", self._route(self.embed, counts=True))
        app.router.add_post("/_sim/mode", self._route(self.set_mode))
        return app

    async def start(self) -> None:
        # A short shutdown: hung handlers never finish by themselves (aiohttp does not cancel
        # them when the client leaves), and stopping must not wait a minute for them.
        self._runner = web.AppRunner(
            self.app(), access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await self._runner.setup()
        for port in self.workers:
            await web.TCPSite(self._runner, self.host, port, backlog=256).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._own_blob_dir:
            shutil.rmtree(self.blob_dir, ignore_errors=True)

    # --- plumbing -------------------------------------------------------------------------

    def _worker(self, request: web.Request) -> SimWorker:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        if sockname is None:
            raise SimError(500, "no local address for this request")
        return self.workers[int(sockname[1])]

    def _route(
        self,
        handler: Callable[[SimWorker, web.Request], Awaitable[web.StreamResponse]],
        counts: bool = False,
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            worker = self._worker(request)
            if request.path != "/_sim/mode":
                if worker.options.mode == "hung":
                    await asyncio.Event().wait()  # never answers: the client must time out
                if worker.options.mode == "slow":
                    await asyncio.sleep(worker.options.slow_delay_ms / 1000)
                if worker.options.mode == "failing" or (
                    worker.options.failure_rate
                    and worker.random.random() < worker.options.failure_rate
                ):
                    return self._error(500, "simulated failure", worker)
            if counts:
                worker.inflight += 1
            try:
                response = await handler(worker, request)
            except SimError as error:
                return self._error(error.status, str(error), worker)
            except json.JSONDecodeError:
                return self._error(400, "invalid JSON body", worker)
            finally:
                if counts:
                    worker.inflight -= 1
            if not response.prepared:
                response.headers[INFLIGHT_HEADER] = str(worker.inflight)
            return response

        return handle

    @staticmethod
    def _error(status: int, message: str, worker: SimWorker) -> web.Response:
        return web.json_response(
            {"error": message}, status=status, headers={INFLIGHT_HEADER: str(worker.inflight)}
        )

    @staticmethod
    async def _body(request: web.Request) -> dict[str, Any]:
        if not request.can_read_body:
            return {}
        body = await request.json()
        if not isinstance(body, dict):
            raise SimError(400, "the body must be a JSON object")
        return body

    @staticmethod
    def _model(worker: SimWorker, body: dict[str, Any]) -> SimModel:
        name = body.get("model") or body.get("name")
        if not isinstance(name, str) or not name:
            raise SimError(400, "model is required")
        model = worker.models.get(model_name(name))
        if model is None:
            raise SimError(404, f"model '{name}' not found")
        return model

    async def _root(self, request: web.Request) -> web.Response:
        return web.Response(text="Ollama is running")

    @staticmethod
    async def _stream(
        request: web.Request, lines: AsyncIterator[dict[str, Any]], worker: SimWorker
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "application/x-ndjson",
                INFLIGHT_HEADER: str(worker.inflight),
            }
        )
        await response.prepare(request)
        async for line in lines:
            await response.write(json.dumps(line).encode() + b"\n")
        await response.write_eof()
        return response

    # --- the Ollama API -------------------------------------------------------------------

    async def version(self, worker: SimWorker, request: web.Request) -> web.Response:
        return web.json_response({"version": SIM_VERSION})

    async def tags(self, worker: SimWorker, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "models": [
                    {
                        "name": m.name,
                        "model": m.name,
                        "modified_at": "2026-01-01T00:00:00Z",
                        "size": m.size,
                        "digest": m.digest,
                        "details": m.details(),
                    }
                    for m in worker.models.values()
                ]
            }
        )

    async def ps(self, worker: SimWorker, request: web.Request) -> web.Response:
        worker.expire_loaded()
        models = []
        for name, until in worker.loaded.items():
            model = worker.models.get(name)
            if model is not None:
                models.append(
                    {
                        "name": name,
                        "model": name,
                        "size": model.size,
                        "digest": model.digest,
                        "details": model.details(),
                        "expires_at": until.isoformat(),
                        "size_vram": model.size,
                        "context_length": model.context_length,
                    }
                )
        return web.json_response({"models": models})

    async def show(self, worker: SimWorker, request: web.Request) -> web.Response:
        model = self._model(worker, await self._body(request))
        return web.json_response(
            {
                "modelfile": f"FROM {model.name}\n",
                "parameters": "temperature 0.8",
                "template": "{{ .Prompt }}",
                "details": model.details(),
                "model_info": {
                    "general.architecture": model.family,
                    f"{model.family}.context_length": model.context_length,
                    **(
                        {f"{model.family}.embedding_length": model.embedding_dim}
                        if model.embedding_dim
                        else {}
                    ),
                },
                "capabilities": model.capabilities,
                "modified_at": "2026-01-01T00:00:00Z",
            }
        )

    async def blob_exists(self, worker: SimWorker, request: web.Request) -> web.Response:
        digest = request.match_info["digest"]
        return web.Response(status=200 if digest in worker.blobs else 404)

    async def blob_upload(self, worker: SimWorker, request: web.Request) -> web.Response:
        digest = request.match_info["digest"]
        if not digest.startswith("sha256:") or len(digest) != 71:
            raise SimError(400, "digest must be sha256:<64 hex digits>")
        hasher = hashlib.sha256()
        target = self.blob_dir / f"{worker.port}-{digest[7:]}"
        with target.open("wb") as handle:
            async for chunk in request.content.iter_chunked(1 << 20):
                hasher.update(chunk)
                handle.write(chunk)
        if f"sha256:{hasher.hexdigest()}" != digest:
            target.unlink(missing_ok=True)
            raise SimError(400, "digest mismatch")
        worker.blobs[digest] = target
        return web.Response(status=201)

    async def create(self, worker: SimWorker, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        name = body.get("model")
        if not isinstance(name, str) or not name:
            raise SimError(400, "model is required")
        files = body.get("files") or {}
        if body.get("from") and not files:
            source = self._model(worker, {"model": body["from"]})
            created = replace(source, name=model_name(name))
        else:
            if not files:
                raise SimError(400, "neither 'from' nor 'files' was given")
            digest = next(iter(files.values()))
            blob = worker.blobs.get(digest)
            if blob is None:
                raise SimError(400, f"blob {digest} not found; upload it first")
            created = gguf_model(model_name(name), blob)
        worker.models[created.name] = created

        async def progress() -> AsyncIterator[dict[str, Any]]:
            for status in (
                "parsing GGUF",
                f"using existing layer sha256:{created.digest}",
                "writing manifest",
                "success",
            ):
                yield {"status": status}

        if body.get("stream", True):
            return await self._stream(request, progress(), worker)
        return web.json_response({"status": "success"})

    async def pull(self, worker: SimWorker, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        wanted = model_name(str(body.get("model") or body.get("name") or ""))
        model = next((m for m in PULLABLE if m.name == wanted), None)
        if model is None:
            raise SimError(500, "pull model manifest: file does not exist")
        worker.models[model.name] = model

        async def progress() -> AsyncIterator[dict[str, Any]]:
            yield {"status": "pulling manifest"}
            for part in range(1, 5):
                yield {
                    "status": f"pulling {model.digest[:12]}",
                    "digest": f"sha256:{model.digest}",
                    "total": model.size,
                    "completed": model.size * part // 4,
                }
                await asyncio.sleep(0)
            for status in ("verifying sha256 digest", "writing manifest", "success"):
                yield {"status": status}

        if body.get("stream", True):
            return await self._stream(request, progress(), worker)
        return web.json_response({"status": "success"})

    async def delete(self, worker: SimWorker, request: web.Request) -> web.Response:
        model = self._model(worker, await self._body(request))
        del worker.models[model.name]
        worker.loaded.pop(model.name, None)
        return web.Response(status=200)

    async def chat(self, worker: SimWorker, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        messages = body.get("messages") or []
        return await self._complete(worker, request, body, prompt=messages, chat=True)

    async def generate(self, worker: SimWorker, request: web.Request) -> web.StreamResponse:
        body = await self._body(request)
        return await self._complete(
            worker, request, body, prompt=body.get("prompt", ""), chat=False
        )

    async def _complete(
        self,
        worker: SimWorker,
        request: web.Request,
        body: dict[str, Any],
        prompt: Any,
        chat: bool,
    ) -> web.StreamResponse:
        model = self._model(worker, body)
        if model.embedding_dim:
            raise SimError(400, f'"{model.name}" does not support {"chat" if chat else "generate"}')
        options = body.get("options") or {}
        words = deterministic_words(model.name, prompt, options.get("num_predict"))
        worker.load(model.name)
        speed = worker.options.tokens_per_second
        started = asyncio.get_running_loop().time()

        def part(text: str, done: bool) -> dict[str, Any]:
            line: dict[str, Any] = {"model": model.name, "created_at": _now(), "done": done}
            if chat:
                line["message"] = {"role": "assistant", "content": text}
            else:
                line["response"] = text
            if done:
                elapsed = int((asyncio.get_running_loop().time() - started) * 1e9)
                line.update(
                    done_reason="stop",
                    total_duration=elapsed,
                    load_duration=0,
                    prompt_eval_count=len(json.dumps(prompt)) // 4 + 1,
                    prompt_eval_duration=0,
                    eval_count=len(words),
                    eval_duration=elapsed,
                )
            return line

        async def tokens() -> AsyncIterator[dict[str, Any]]:
            await asyncio.sleep(worker.options.first_token_ms / 1000)
            for index, word in enumerate(words):
                if index and speed > 0:
                    await asyncio.sleep(1 / speed)
                yield part(word if index == 0 else f" {word}", False)
            yield part("", True)

        if body.get("stream", True):
            return await self._stream(request, tokens(), worker)
        async for _ in tokens():  # same timing, one answer
            pass
        return web.json_response(part(" ".join(words), True))

    async def embed(self, worker: SimWorker, request: web.Request) -> web.Response:
        body = await self._body(request)
        model = self._model(worker, body)
        inputs = body.get("input", "")
        texts = [inputs] if isinstance(inputs, str) else list(inputs)
        dim = model.embedding_dim or 256
        worker.load(model.name)
        return web.json_response(
            {
                "model": model.name,
                "embeddings": [deterministic_embedding(model.name, str(t), dim) for t in texts],
                "total_duration": 1_000_000,
                "load_duration": 0,
                "prompt_eval_count": sum(len(str(t).split()) for t in texts),
            }
        )

    async def set_mode(self, worker: SimWorker, request: web.Request) -> web.Response:
        """Simulator control (not Ollama): switch this worker to normal, slow, hung or failing."""
        body = await self._body(request)
        mode = body.get("mode")
        if mode not in MODES:
            raise SimError(400, f"mode must be one of {', '.join(MODES)}")
        worker.options = replace(worker.options, mode=mode)
        return web.json_response({"mode": mode})


def gguf_model(name: str, blob: Path) -> SimModel:
    """A model made from an uploaded GGUF file (its architecture read from the header)."""
    with blob.open("rb") as handle:
        if handle.read(4) != b"GGUF":
            raise SimError(400, "the uploaded file is not a GGUF model")
    family = "unknown"
    try:
        from gguf import GGUFReader

        reader = GGUFReader(str(blob))
        field_ = reader.fields.get("general.architecture")
        if field_ is not None:
            family = bytes(field_.parts[field_.data[0]]).decode("utf-8", "replace")
    except Exception:  # a header we cannot read fully still makes a model, as Ollama would try
        family = "unknown"
    return SimModel(name, family, "unknown", "F32", blob.stat().st_size)


async def serve_workers(sim: WorkerSim, stop: asyncio.Event) -> None:
    await sim.start()
    try:
        await stop.wait()
    finally:
        await sim.stop()
