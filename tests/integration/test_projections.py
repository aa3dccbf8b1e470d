"""Read models on real PostgreSQL: rows and position together, exactly once, rebuildable."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

import psycopg
import pytest

from domain.context import CommandContext
from infrastructure.bootstrap import Pool
from projections.audit import query_audit
from projections.framework import (
    ChangeNotice,
    LogListener,
    ProjectionRunner,
    ReadModel,
    RecordedEvent,
)
from projections.settings import read_settings_view

CLI = CommandContext(actor="cli:ops", reason="maintenance")


def change_flags(pool: Pool, count: int) -> None:
    for value in range(1, count + 1):
        pool.settings.set_flag("api.rate_limit_per_minute", value, CLI)


def test_settings_and_audit_views_follow_the_store(pool: Pool) -> None:
    pool.settings.set_flag("cluster.failover_mode", "auto", CLI)
    pool.settings.set_flag("pool.debug", True, CLI)
    for name in ("settings", "audit"):
        pool.runner(name).catch_up()
    with pool.database.connection() as conn:
        view = read_settings_view(conn)
        audit = query_audit(conn, newest_first=False)
    assert view["cluster.failover_mode"]["value"] == "auto"
    assert view["cluster.failover_mode"]["scope"] == "replicated"
    assert view["pool.debug"]["changed_by"] == "cli:ops"
    assert [e.event_type for e in audit] == ["Created", "FlagChanged", "Created", "FlagChanged"]
    changed = audit[1].payload
    assert (changed["key"], changed["old_value"], changed["new_value"]) == (
        "cluster.failover_mode",
        "manual",
        "auto",
    )
    # The stamp cluster flags merge by (last writer wins across pools): when and where.
    assert changed["changed_in"] == pool.pool_id and changed["changed_at"].startswith("20")
    assert {e.actor for e in audit} == {"cli:ops"}
    assert audit[0].correlation_id and audit[0].origin_pool == pool.pool_id


def test_lag_is_observable(pool: Pool) -> None:
    change_flags(pool, 5)
    audit = pool.runner("audit")
    assert audit.lag() == 6  # the settings aggregate's creation and five changes
    audit.catch_up()
    assert audit.lag() == 0


class Exploding(ReadModel):
    """A view that fails on its third event, after writing rows for the first two."""

    name = "exploding"
    schema = ("CREATE TABLE IF NOT EXISTS exploding_view (position bigint PRIMARY KEY)",)
    tables = ("exploding_view",)

    def apply(self, cur: psycopg.Cursor[Any], event: RecordedEvent) -> Iterable[ChangeNotice]:
        if event.position == 3:
            raise RuntimeError("disk on fire")
        cur.execute("INSERT INTO exploding_view VALUES (%s)", (event.position,))
        return ()


def test_a_failed_batch_leaves_neither_rows_nor_position(pool: Pool) -> None:
    change_flags(pool, 4)
    pool.database.apply_schema(Exploding.schema)
    runner = ProjectionRunner(pool.database, pool.runner("audit").source, Exploding())
    with pytest.raises(RuntimeError, match="disk on fire"):
        runner.catch_up()
    assert runner.position() == 0
    with pool.database.connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM exploding_view").fetchone() == {"n": 0}


def test_concurrent_runners_apply_each_event_exactly_once(pool: Pool) -> None:
    change_flags(pool, 60)
    # Two runners of the same view, as a CLI catch-up beside a running serve would be.
    runners = [
        ProjectionRunner(
            pool.database, pool.runner("audit").source, pool.runner("audit").model, batch_size=7
        )
        for _ in range(2)
    ]
    errors: list[BaseException] = []

    def run(runner: ProjectionRunner) -> None:
        try:
            runner.catch_up()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(r,)) for r in runners]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with pool.database.connection() as conn:
        counts = conn.execute(
            "SELECT count(*) AS n, count(DISTINCT position) AS d FROM audit_log"
        ).fetchone()
    assert counts == {"n": 61, "d": 61}
    assert runners[0].position() == 61


def test_rebuild_gives_the_same_view(pool: Pool) -> None:
    change_flags(pool, 10)
    pool.settings.set_flag("pool.maintenance_banner", "upgrade tonight", CLI)
    settings = pool.runner("settings")
    settings.catch_up()
    with pool.database.connection() as conn:
        before = read_settings_view(conn)
    settings.rebuild()
    with pool.database.connection() as conn:
        after = read_settings_view(conn)
    assert after == before
    assert after["api.rate_limit_per_minute"]["value"] == 10


def test_a_filtered_view_moves_past_events_it_ignores(pool: Pool) -> None:
    change_flags(pool, 3)
    notifications = pool.runner("notifications")
    notifications.catch_up()
    assert notifications.position() == 4
    assert notifications.lag() == 0


def test_a_nul_character_does_not_stall_a_view(pool: Pool) -> None:
    # PostgreSQL text refuses NUL; a reason holding one must still reach the audit view.
    pool.settings.set_flag("pool.debug", True, CommandContext(actor="cli:ops", reason="a\x00b"))
    audit = pool.runner("audit")
    audit.catch_up()
    assert audit.lag() == 0
    with pool.database.connection() as conn:
        reasons = [e.reason for e in query_audit(conn)]
    assert "a\ufffdb" in reasons


def test_one_listener_wakes_only_the_views_that_read_the_notified_topics(
    database_url: str,
) -> None:
    listener = LogListener(database_url, "archipel_listener_test")
    settings = listener.subscribe(["topic:settings"])
    everything = listener.subscribe()
    try:
        assert everything.take(timeout=5) is None  # connected: "anything may have been missed"
        assert settings.take(timeout=5) is None
        with psycopg.connect(database_url, autocommit=True) as conn:
            conn.execute("SELECT pg_notify('archipel_listener_test', 'topic:workers')")
            conn.execute("SELECT pg_notify('archipel_listener_test', 'topic:settings\ntopic:x')")
        seen: set[str] = set()
        while len(seen) < 3:  # one wake-up or two, as the notices arrive
            woken = everything.take(timeout=5)
            assert woken is not None, f"only {seen} arrived"
            seen |= woken
        assert seen == {"topic:workers", "topic:settings", "topic:x"}
        assert settings.take(timeout=5) == {"topic:settings", "topic:x"}
        assert settings.take(timeout=0.3) is None  # the workers notice never woke it
    finally:
        listener.close()
