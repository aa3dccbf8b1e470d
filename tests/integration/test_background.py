"""Outbox, Dramatiq workers on the real Redis, scheduler election, readiness."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from domain.context import CommandContext
from infrastructure.bootstrap import Pool, PoolRuntime
from infrastructure.scheduler import PeriodicJob, Scheduler
from tests.waiting import eventually
from web.app import create_app

ADMIN = CommandContext(actor="admin:alice", reason="quieter logs")


def notifications(pool: Pool) -> list[dict[str, object]]:
    with pool.database.connection() as conn:
        return list(conn.execute("SELECT * FROM notifications_view ORDER BY raised_at").fetchall())


@pytest.fixture
def runtime(pool: Pool) -> Iterator[PoolRuntime]:
    running = PoolRuntime(pool, ("projections", "workers", "scheduler"))
    running.start()
    yield running
    running.stop()


def test_a_flag_change_is_announced_exactly_once(pool: Pool, runtime: PoolRuntime) -> None:
    pool.settings.set_flag("pool.debug", True, ADMIN)

    rows = eventually(lambda: notifications(pool))
    assert isinstance(rows, list) and len(rows) == 1
    assert rows[0]["title"] == "pool.debug changed from false to true"
    assert rows[0]["body"] == "By admin:alice: quieter logs"

    # The automation's own event says who decided, and what caused it.
    with pool.database.connection() as conn:
        cause, effect = conn.execute(
            "SELECT event_id, actor, correlation_id, causation_id FROM audit_log "
            "WHERE event_type IN ('FlagChanged', 'Raised') ORDER BY position"
        ).fetchall()
    assert effect["actor"] == "automation:notifier"
    assert effect["causation_id"] == cause["event_id"]
    assert effect["correlation_id"] == cause["correlation_id"]

    # Dramatiq delivers at least once: the same message again changes nothing.
    background = pool.background
    assert background is not None
    with pool.database.connection() as conn:
        (row,) = conn.execute("SELECT message, sent_at FROM outbox").fetchall()
    assert row["sent_at"] is not None
    background._actors["announce_flag_change"].send(row["message"])
    time.sleep(1.0)
    pool.runner("notifications").catch_up()
    assert len(notifications(pool)) == 1


def test_unsent_outbox_rows_are_relayed_after_a_crash(pool: Pool) -> None:
    # No runtime yet: the projection writes outbox rows but nobody sends them...
    pool.settings.set_flag("api.rate_limit_per_minute", 50, ADMIN)
    outbox = pool.runner("outbox")
    background = pool.background
    assert background is not None
    relay, outbox.model._relay = outbox.model._relay, None  # type: ignore[attr-defined]
    outbox.catch_up()
    outbox.model._relay = relay  # type: ignore[attr-defined]
    with pool.database.connection() as conn:
        assert conn.execute(
            "SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL"
        ).fetchone() == {"n": 1}
    # ...until a worker process comes up and the relay sends what is pending.
    background.start_worker(1)
    try:
        assert background.relay() == 1
        assert background.relay() == 0
        pool.runner("notifications").catch_up()
        rows = eventually(lambda: (pool.runner("notifications").catch_up(), notifications(pool))[1])
        assert len(rows) == 1  # type: ignore[arg-type]
    finally:
        background.stop_worker()


def test_one_scheduler_per_pool(database_url: str) -> None:
    runs: list[str] = []

    def job(name: str) -> list[PeriodicJob]:
        return [PeriodicJob("tick", lambda: 0.0, lambda: True, lambda: runs.append(name))]

    first = Scheduler(database_url, job("first"))
    second = Scheduler(database_url, job("second"))
    try:
        assert first._try_lead() is True
        assert second._try_lead() is False
        first.release()  # the leader stops (or its process dies: the session ends)
        assert second._try_lead() is True
        assert first._try_lead() is False
    finally:
        first.release()
        second.release()


def test_readiness_names_what_is_not_ready(pool: Pool) -> None:
    idle = PoolRuntime(pool, ("web", "projections"))  # projections not started yet
    client = TestClient(create_app(idle))
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["projections"]
    assert body["code"] == "not_ready" and "catching up" in body["detail"]
    assert client.get("/healthz").json() == {"status": "ok"}

    for runner in pool.runners.values():
        runner.catch_up()
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {"database": "ok", "redis": "ok", "projections": "ok"}


def test_metrics_show_lag_and_leadership(pool: Pool, runtime: PoolRuntime) -> None:
    pool.settings.set_flag("pool.debug", True, ADMIN)
    eventually(lambda: notifications(pool))
    client = TestClient(create_app(runtime))
    text = eventually(
        lambda: (
            (t := client.get("/metrics").text)
            and 'projection_lag_events{view="audit"} 0.0' in t
            and t
        )
    )
    assert isinstance(text, str)
    # The flag change, its notification, and whatever the periodic automations decided.
    head = re.search(r"^archipel_event_store_head (\d+)\.0$", text, re.M)
    assert head is not None and int(head.group(1)) >= 3
    assert "archipel_scheduler_leader 1.0" in text
    assert "archipel_outbox_unsent 0.0" in text


def test_prune_drops_old_notices_and_expired_sessions(pool: Pool) -> None:
    from infrastructure.bootstrap import prune

    pool.settings.set_flag("pool.debug", True, ADMIN)
    pool.runner("settings").catch_up()
    old_session = pool.sessions.open("some-admin", "127.0.0.1")
    fresh_session = pool.sessions.open("some-admin", "127.0.0.1")
    with pool.database.connection() as conn:
        conn.execute("UPDATE change_notices SET recorded_at = now() - interval '2 hours'")
        conn.execute(
            "UPDATE admin_sessions SET created_at = now() - interval '13 hours' "
            "WHERE id_hash = encode(sha256(%s::bytea), 'hex')",
            (old_session,),
        )
    pool.settings.set_flag("pool.debug", False, ADMIN)
    pool.runner("settings").catch_up()
    abandoned = pool.blobs.start("big.gguf", 1000)
    current = pool.blobs.start("other.gguf", 1000)
    part = pool.config.data_dir / "blobs" / "uploads" / f"{abandoned.id}.part"
    os.utime(part, (time.time() - 2 * 86400, time.time() - 2 * 86400))

    prune(pool)

    assert not part.exists()
    assert pool.blobs.status(current.id).offset == 0  # an upload in progress stays
    with pool.database.connection() as conn:
        notices = conn.execute("SELECT key FROM change_notices").fetchall()
        sessions = conn.execute("SELECT count(*) AS n FROM admin_sessions").fetchone()
    assert notices == [{"key": "pool.debug"}]  # only the recent one is kept
    assert sessions == {"n": 1}
    assert pool.sessions.find(fresh_session, 1800, 43200) == "some-admin"
