"""Workers over the API with worker-sim: register, health checks, offline and back, topology."""

from __future__ import annotations

import threading
import time
from typing import Any

import ollama
import pytest

from tests.e2e.admin_client import AdminClient, SseReader
from tests.e2e.conftest import PoolProcess
from tests.e2e.sim import SimProcess, free_ports
from tests.waiting import eventually

Onboarded = tuple[PoolProcess, AdminClient]
INTERVAL = 2  # seconds between health rounds in these tests (the flag's minimum)


@pytest.fixture(scope="module")
def fleet(onboarded: Onboarded) -> Onboarded:
    _, alice = onboarded
    changed = alice.put(
        "/api/settings/workers.health_check_interval_seconds",
        {"value": INTERVAL, "reason": "fast checks for tests"},
    )
    assert changed.status_code == 200
    return onboarded


def register(alice: AdminClient, url: str, name: str, **extra: Any) -> dict[str, Any]:
    response = alice.post(
        "/api/workers", {"url": url, "name": name, "reason": "new GPU box", **extra}
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def worker(alice: AdminClient, worker_id: str) -> dict[str, Any]:
    return dict(alice.get(f"/api/workers/{worker_id}").json())


def test_bad_registrations_are_refused_and_record_nothing(fleet: Onboarded) -> None:
    pool, alice = fleet
    nothing_there = f"http://127.0.0.1:{free_ports(1)}"
    unreachable = alice.post("/api/workers", {"url": nothing_there, "name": "ghost", "reason": "r"})
    assert unreachable.status_code == 422
    assert unreachable.json()["code"] == "worker_unreachable"
    assert "cannot reach" in unreachable.json()["detail"]

    not_ollama = alice.post("/api/workers", {"url": pool.url, "name": "me", "reason": "r"})
    assert not_ollama.status_code == 422 and not_ollama.json()["code"] == "not_ollama"

    for bad in (
        {"url": "ftp://x", "name": "x"},
        {"url": "http://h:1/path", "name": "x"},
        {"url": "http://h:11434", "name": "x", "labels": ["has space"]},
    ):
        refused = alice.post("/api/workers", {**bad, "reason": "r"})
        assert refused.status_code == 422, bad

    history = alice.get("/api/audit", params={"event_type": "Registered", "limit": 500}).json()
    assert not [e for e in history["items"] if e["aggregate_type"] == "Worker"]

    sim = SimProcess().start()
    try:
        register(alice, sim.urls[0], "dup-1")
        duplicate = alice.post(
            "/api/workers",
            {
                "url": sim.urls[0].replace("127.0.0.1", "127.0.0.1") + "/",
                "name": "dup-2",
                "reason": "again",
            },
        )
        assert duplicate.status_code == 409 and duplicate.json()["code"] == "worker_exists"
    finally:
        sim.stop()


def test_a_worker_goes_offline_and_comes_back(fleet: Onboarded) -> None:
    _, alice = fleet
    sim = SimProcess().start()
    try:
        created = register(alice, sim.urls[0], "gpu-paris-1", labels=["gpu=a100"], capacity=8)
        wid = created["id"]
        online = eventually(lambda: (w := worker(alice, wid))["status"] == "online" and w)
        assert online["version"] == "0.9.0"
        assert "llama3.2:1b" in online["installed_models"]
        assert online["latency_ms"] is not None and online["activity"] == "idle"

        # The machine goes away: offline within two check intervals (plus one round's slack).
        sim.stop()
        went_down = time.monotonic()
        offline = eventually(
            lambda: (w := worker(alice, wid))["status"] == "offline" and w, timeout=3 * INTERVAL + 5
        )
        assert time.monotonic() - went_down <= 3 * INTERVAL + 5
        assert "refused" in offline["status_reason"] or "unreachable" in offline["status_reason"]

        # The history comes from the audit projection, which may trail the topology one by a beat.
        def latest_status_change() -> dict[str, Any] | None:
            history = worker(alice, wid)["history"]
            change = next(e for e in history if e["event_type"] == "StatusChanged")
            return change if change["payload"]["status"] == "offline" else None

        change = eventually(latest_status_change, timeout=5)
        assert change["actor"] == "automation:health"
        assert change["payload"]["status"] == "offline" and change["reason"]

        # It comes back on the same address: online again.
        sim = SimProcess(port=sim.port).start()
        eventually(lambda: worker(alice, wid)["status"] == "online", timeout=3 * INTERVAL + 5)
    finally:
        sim.stop()


def test_a_hung_worker_does_not_delay_the_others(fleet: Onboarded) -> None:
    _, alice = fleet
    healthy = SimProcess(count=3).start()
    hung = SimProcess().start()
    try:
        ids = [register(alice, url, f"fast-{i}")["id"] for i, url in enumerate(healthy.urls)]
        hung_id = register(alice, hung.urls[0], "stuck")["id"]  # (a hung one cannot register)
        hung.set_mode(0, "hung")  # then it stops answering anything
        eventually(lambda: all(worker(alice, i)["status"] == "online" for i in ids))
        # The others keep being checked every interval while the hung one times out.
        first = worker(alice, ids[0])["checked_at"]
        time.sleep(INTERVAL * 2 + 0.5)
        later = worker(alice, ids[0])["checked_at"]
        assert later != first
        stuck = eventually(
            lambda: (w := worker(alice, hung_id))["status"] == "offline" and w,
            timeout=4 * INTERVAL + 8,
        )
        assert "timed out" in stuck["status_reason"]
    finally:
        healthy.stop()
        hung.stop()


def test_busy_idle_drain_edit_remove_and_topology(fleet: Onboarded) -> None:
    _, alice = fleet
    sim = SimProcess(options=["--tokens-per-second", "4"]).start()
    try:
        wid = register(alice, sim.urls[0], "lyon-1")["id"]
        eventually(lambda: worker(alice, wid)["activity"] == "idle")

        # A long generation in progress makes it busy (live telemetry, no event).
        client = ollama.Client(host=sim.urls[0])
        talk = threading.Thread(
            target=lambda: list(
                client.chat(
                    model="llama3.2:1b",
                    messages=[{"role": "user", "content": "long"}],
                    options={"num_predict": 60},
                    stream=True,
                )
            )
        )
        talk.start()
        eventually(lambda: worker(alice, wid)["activity"] == "busy")
        counts = alice.get("/api/workers").json()["counts"]
        assert counts["busy"] >= 1
        overview = alice.get("/api/overview").json()["workers"]
        assert overview["busy"] >= 1 and overview["total"] >= 1
        talk.join(timeout=30)

        edited = alice.send(
            "PATCH",
            f"/api/workers/{wid}",
            {"name": "lyon-gpu-1", "capacity": 2, "reason": "renamed"},
        )
        assert edited.status_code == 200 and edited.json()["name"] == "lyon-gpu-1"
        drained = alice.post(f"/api/workers/{wid}/drain", {"reason": "maintenance"})
        assert drained.json()["drained"] is True
        assert alice.post(f"/api/workers/{wid}/drain", {"reason": "again"}).status_code == 409
        assert alice.post(f"/api/workers/{wid}/undrain", {"reason": "done"}).status_code == 200

        topology = alice.get("/api/topology").json()
        node = next(w for w in topology["workers"] if w["id"] == wid)
        assert "nomic-embed-text:latest" in node["installed_models"]
        assert "llama3.2:1b" in node["loaded_models"]  # it just ran
        assert topology["pool"]["name"] == "paris-1"

        # Telemetry reaches live clients as change notices.
        stream = SseReader(alice)
        stream.wait_for(
            lambda e: e.event == "change" and any(n["view"] == "telemetry" for n in e.data),
            timeout=10,
        )
        stream.close()

        removed = alice.post(f"/api/workers/{wid}/remove", {"reason": "decommissioned"})
        assert removed.status_code == 204
        assert wid not in [w["id"] for w in alice.get("/api/workers").json()["items"]]
        history = worker(alice, wid)["history"]
        # Newest first; the health automation's status changes may sit in between.
        by_admins = [e["event_type"] for e in history if e["event_type"] != "StatusChanged"]
        assert by_admins == ["Removed", "Undrained", "Drained", "Edited", "Registered"]
        assert any(
            e["event_type"] == "StatusChanged" and e["actor"] == "automation:health"
            for e in history
        )
        # Registered again later: same identity, history kept.
        again = register(alice, sim.urls[0], "lyon-1-again")
        assert again["id"] == wid
    finally:
        sim.stop()
