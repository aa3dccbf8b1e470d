"""Talking to Ollama workers: the registration probe and the concurrent health checker.

Checks use the official `ollama` client (httpx underneath) with short timeouts, all of a
round concurrently on one event loop, so a hung worker costs only its own timeout.
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import threading
import time
import zlib
from collections.abc import Sequence

import httpx
import ollama

from application.workers import CheckResult, NotOllama, ProbeResult, WorkerUnreachable

PROBE_TIMEOUT = 5.0
INFLIGHT_HEADERS = ("x-sim-inflight", "x-ollama-inflight")
# Installed models and version change rarely: fetched every this many rounds (and at first).
SLOW_FIELDS_EVERY = 6
CONCURRENCY = 100
# Kept well beyond the check interval, so each round reuses its connections.
KEEPALIVE = httpx.Limits(max_connections=2, max_keepalive_connections=1, keepalive_expiry=120)


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context for every worker client: httpx builds a new one per client otherwise,
    about 25 ms each, which stalled the first round of hundreds of workers."""
    return ssl.create_default_context()


def _why(error: BaseException) -> str:
    if isinstance(error, httpx.TimeoutException | TimeoutError):
        return "no answer in time (timed out)"
    # The ollama client turns connection failures into the builtin ConnectionError.
    if isinstance(error, httpx.ConnectError | ConnectionError):
        return "connection refused or host unreachable"
    if isinstance(error, ollama.ResponseError):
        return f"HTTP {error.status_code}: {error.error}"[:300]
    return f"{type(error).__name__}: {error}"[:300]


class OllamaHttpProbe:
    def probe(self, url: str) -> ProbeResult:
        try:
            version = httpx.get(f"{url}/api/version", timeout=PROBE_TIMEOUT, verify=tls_context())
        except httpx.HTTPError as error:
            raise WorkerUnreachable(f"cannot reach {url}: {_why(error)}") from None
        try:
            body = version.json()
        except ValueError:
            body = None
        if version.status_code != 200 or not isinstance(body, dict) or "version" not in body:
            raise NotOllama(
                f"{url} does not answer like Ollama (GET /api/version gave HTTP "
                f"{version.status_code}); is it the right port (Ollama's default is 11434)?"
            )
        try:
            client = ollama.Client(host=url, timeout=PROBE_TIMEOUT, verify=tls_context())
            models = client.list().models
        except (httpx.HTTPError, ollama.ResponseError) as error:
            raise NotOllama(
                f"{url} answers /api/version but not /api/tags: {_why(error)}"
            ) from None
        return ProbeResult(str(body["version"]), [m.model or "" for m in models])


class _WorkerClient:
    """One worker's client, kept between rounds; remembers the last in-flight header seen."""

    def __init__(self, url: str, timeout: float) -> None:
        self.inflight: int | None = None
        self.client = ollama.AsyncClient(
            host=url,
            timeout=timeout,
            verify=tls_context(),
            limits=KEEPALIVE,
            event_hooks={"response": [self._seen]},
        )

    async def _seen(self, response: httpx.Response) -> None:
        for header in INFLIGHT_HEADERS:
            if header in response.headers:
                try:
                    self.inflight = int(response.headers[header])
                except ValueError:
                    self.inflight = None


class HealthChecker:
    """Runs check rounds on a private event loop thread (Dramatiq actors are threads)."""

    def __init__(self, timeout: float = 2.0) -> None:
        self.timeout = timeout
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="health", daemon=True)
        self._thread.start()
        self._clients: dict[str, _WorkerClient] = {}
        self._rounds = 0

    def check(self, workers: Sequence[tuple[str, str]]) -> list[CheckResult]:
        """Check every (worker id, url) concurrently; returns when all answered or timed out."""
        self._rounds += 1
        future = asyncio.run_coroutine_threadsafe(self._round(workers), self._loop)
        # Up to CONCURRENCY checks at a time, each bounded by its timeout.
        waves = len(workers) // CONCURRENCY + 1
        return future.result(timeout=self.timeout * waves * 2 + 10)

    async def _round(self, workers: Sequence[tuple[str, str]]) -> list[CheckResult]:
        live = {url for _, url in workers}
        for url in [u for u in self._clients if u not in live]:
            await self._clients.pop(url).client._client.aclose()
        # A bounded number in flight: with a thousand at once on one thread, each check's
        # timeout would run while it waits its turn, and healthy workers would "time out".
        turns = asyncio.Semaphore(CONCURRENCY)

        async def in_turn(worker_id: str, url: str) -> CheckResult:
            async with turns:
                # Each worker's slow fields come every SLOW_FIELDS_EVERY rounds, staggered, so
                # no round pays for all of them.
                slow = (self._rounds + zlib.crc32(url.encode())) % SLOW_FIELDS_EVERY == 0
                return await self._check(worker_id, url, slow)

        return list(await asyncio.gather(*(in_turn(wid, url) for wid, url in workers)))

    async def _check(self, worker_id: str, url: str, slow: bool) -> CheckResult:
        client = self._clients.get(url)
        if client is None:
            client = self._clients[url] = _WorkerClient(url, self.timeout)
            slow = True
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                running = await client.client.ps()
                latency = (time.perf_counter() - started) * 1000
                installed: list[str] | None = None
                version: str | None = None
                if slow:
                    installed = [m.model or "" for m in (await client.client.list()).models]
                    # The client has no version call: its own httpx client asks.
                    answer = await client.client._client.get("/api/version")
                    version = str(answer.json().get("version", ""))
        except Exception as error:
            return CheckResult(worker_id, ok=False, reason=_why(error))
        return CheckResult(
            worker_id,
            ok=True,
            latency_ms=round(latency, 1),
            version=version,
            installed=installed,
            loaded=[m.model or "" for m in running.models],
            inflight=client.inflight,
        )

    def close(self) -> None:
        async def close_all() -> None:
            for client in self._clients.values():
                await client.client._client.aclose()

        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(close_all(), self._loop).result(timeout=10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
