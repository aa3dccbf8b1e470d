"""A tampering proxy between two pools: every altered batch is refused, nothing is applied."""

from __future__ import annotations

import asyncio
import json
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from aiohttp import web

from tests.e2e.admin_client import AdminClient
from tests.e2e.conftest import PoolProcess, free_port, shut_down
from tests.e2e.sim import SimProcess
from tests.waiting import eventually


class TamperingProxy:
    """Forwards to a pool; alters the event batches it serves according to `mode`."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.port = free_port()
        self.mode: str | None = None
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self.runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def _forward(self, request: web.Request) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        async with httpx.AsyncClient() as client:
            answer = await client.request(
                request.method,
                self.target + request.path_qs,
                headers=headers,
                content=await request.read(),
            )
        body = answer.content
        if request.path == "/federation/v1/log" and self.mode and answer.status_code == 200:
            body = self._tamper(json.loads(body))
        return web.Response(
            status=answer.status_code,
            body=body,
            content_type=answer.headers.get("content-type", "application/json").split(";")[0],
        )

    def _tamper(self, batch: dict[str, Any]) -> bytes:
        if batch["events"]:
            if self.mode == "edit":
                batch["events"][0]["payload"]["name"] = "evil-worker"
            elif self.mode == "signature":
                signature = batch["signature"]
                batch["signature"] = ("B" if signature[0] != "B" else "C") + signature[1:]
            elif self.mode == "drop":
                batch["events"] = batch["events"][:-1]
        return json.dumps(batch).encode()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture
def pools_behind_proxy() -> Iterator[tuple[PoolProcess, AdminClient, AdminClient, TamperingProxy]]:
    base = Path(tempfile.mkdtemp(prefix="archipel-tamper-", dir="/tmp"))
    a, b = PoolProcess(base / "a"), PoolProcess(base / "b")
    a.start()
    b.start()
    proxy = TamperingProxy(a.url)
    try:
        alice, bob = AdminClient(a.url), AdminClient(b.url)
        alice.onboard(public_url=proxy.url)  # B reaches A only through the proxy
        bob.onboard()
        yield b, alice, bob, proxy
    finally:
        proxy.close()
        shut_down(a)
        shut_down(b)
        shutil.rmtree(base, ignore_errors=True)


def test_tampered_batches_are_refused_and_apply_nothing(
    pools_behind_proxy: tuple[PoolProcess, AdminClient, AdminClient, TamperingProxy],
) -> None:
    b, alice, bob, proxy = pools_behind_proxy
    proxy.mode = "edit"
    invite = alice.post("/api/federation/invites", {"reason": "r"}).json()
    paired = bob.post(
        "/api/federation/peers", {"url": proxy.url, "code": invite["code"], "reason": "via proxy"}
    )
    assert paired.status_code == 201, paired.text
    sim = SimProcess().start()
    try:
        alice.post("/api/workers", {"url": sim.urls[0], "name": "gpu-a", "reason": "r"})
        rejected = 0
        expected = []
        for mode, reason in (("edit", "chain"), ("signature", "bad signature"), ("drop", "chain")):
            proxy.mode = mode
            expected.append(reason)
            peer = eventually(
                lambda rejected=rejected: [
                    p
                    for p in bob.get("/api/federation").json()["peers"]
                    if p["rejected_batches"] > rejected
                ],
                timeout=40,
            )[0]
            rejected = peer["rejected_batches"]
            assert peer["applied_seq"] == 0  # nothing applied
            assert bob.get("/api/cluster-workers").json()["items"] == []
        # Each refusal is kept with its reason, and opened an incident.
        with psycopg.connect(b.database_url()) as conn:
            reasons = [
                r[0]
                for r in conn.execute("SELECT reason FROM rejected_batches ORDER BY id").fetchall()
            ]
        for want in expected:
            assert any(want in got for got in reasons), (want, reasons)
        # One incident for the peer, counting every refusal (the same cause updates it).
        incident = eventually(
            lambda: [
                i
                for i in bob.get("/api/incidents", params={"kind": "batch_rejected"}).json()[
                    "items"
                ]
                if i["occurrences"] == len(reasons)
            ],
            timeout=20,
        )
        assert len(incident) == 1 and incident[0]["subject"].startswith("peer:")
        # The proxy stepping aside lets the genuine batch through.
        proxy.mode = None
        eventually(
            lambda: [
                w for w in bob.get("/api/cluster-workers").json()["items"] if w["name"] == "gpu-a"
            ],
            timeout=40,
        )
        assert "evil-worker" not in json.dumps(bob.get("/api/cluster-workers").json())
    finally:
        sim.stop()
