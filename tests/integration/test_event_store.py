"""The event store on real PostgreSQL: metadata, concurrency, configuration without os.environ."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from application.settings import SettingsService
from domain.context import CommandContext, recording
from domain.errors import ConcurrencyConflict
from domain.flags import REGISTRY
from domain.settings import PoolSettings
from domain.workers import Worker
from infrastructure.bootstrap import Pool
from infrastructure.eventstore import PoolEventRecorder, PoolEventStore, postgres_env
from tests.waiting import eventually

ADMIN = CommandContext(actor="admin:alice", reason="raise the limit", correlation_id="c-42")


def test_stored_events_carry_the_command_metadata(pool: Pool) -> None:
    pool.settings.set_flag("api.rate_limit_per_minute", 300, ADMIN)

    with pool.database.connection() as conn:
        rows = conn.execute(
            "SELECT topic, state FROM archipel_events ORDER BY notification_id"
        ).fetchall()
    assert [r["topic"].rsplit(".", 1)[-1] for r in rows] == ["Created", "FlagChanged"]
    changed = pool.store.mapper.transcoder.decode(bytes(rows[-1]["state"]))
    meta = changed["meta"]
    assert meta["actor"] == "admin:alice"
    assert meta["reason"] == "raise the limit"
    assert meta["correlation_id"] == "c-42"
    assert meta["origin_pool"] == pool.pool_id
    assert meta["scope"] == "local"
    assert set(meta) >= {"event_id", "causation_id", "occurred_at"}


def test_conflicting_saves_surface_as_a_domain_error(pool: Pool) -> None:
    pool.settings.set_flag("pool.debug", True, ADMIN)
    aggregate_id = PoolSettings.create_id(pool.pool_id)
    first = pool.store.load(aggregate_id, PoolSettings)
    second = pool.store.load(aggregate_id, PoolSettings)
    with recording(ADMIN, pool.pool_id):
        first.change_flag(REGISTRY["pool.debug"], False)
        second.change_flag(REGISTRY["auth.login_lockout_threshold"], 9)
    pool.store.store(first)
    with pytest.raises(ConcurrencyConflict):
        pool.store.store(second)
    # Nothing of the loser was stored, the winner's change is intact (read without the
    # service's one-second cache: the winner wrote behind its back, as another process would).
    stored = SettingsService(pool.store)
    assert stored.value("pool.debug") is False
    assert stored.value("auth.login_lockout_threshold") == 5


def test_two_processes_worth_of_stores_see_each_others_writes(
    pool: Pool, database_url: str
) -> None:
    # A second application object (as in another process) with an aggregate cache of its own.
    other = PoolEventStore(postgres_env(database_url), pool_id=pool.pool_id)
    try:
        other_settings = SettingsService(other)
        assert other_settings.value("pool.debug") is False
        pool.settings.set_flag("pool.debug", True, ADMIN)
        assert other_settings.value("pool.debug") is True  # the cache fast-forwards
        other_settings.set_flag("pool.debug", False, ADMIN)
        assert SettingsService(pool.store).value("pool.debug") is False
        # The pool's own service caches reads for a second: it sees the change within that.
        eventually(lambda: pool.settings.value("pool.debug") is False, timeout=3)
    finally:
        other.close()


def test_the_store_ignores_the_process_environment(
    monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path
) -> None:
    # Variables the library would honour if it read os.environ: they must change nothing.
    monkeypatch.setitem(os.environ, "PERSISTENCE_MODULE", "eventsourcing.popo")
    monkeypatch.setitem(os.environ, "POSTGRES_DBNAME", "does_not_exist")
    monkeypatch.setitem(os.environ, "ARCHIPEL_POSTGRES_DBNAME", "does_not_exist")
    store = PoolEventStore(postgres_env(database_url), pool_id="p")
    try:
        assert isinstance(store.recorder, PoolEventRecorder)  # PostgreSQL, not in-memory
        assert store.recorder.max_notification_id() in (None, 0)
    finally:
        store.close()


def test_a_large_batch_saves_in_one_transaction_without_hanging(pool: Pool) -> None:
    # psycopg's pipeline mode could deadlock on inserts larger than a socket write (~1 MB
    # here); the store sends them outside pipeline mode. pytest-timeout would catch a hang.
    spec = REGISTRY["api.rate_limit_per_minute"]
    with recording(ADMIN, pool.pool_id):
        settings = PoolSettings(pool_id="batch-pool")
        for value in range(1, 2500):
            settings.change_flag(spec, value)
    assert pool.store.store(settings) == 2500
    reloaded = pool.store.load(settings.id, PoolSettings)
    assert reloaded.version == 2500 and reloaded.values["api.rate_limit_per_minute"] == 2499


def test_concurrent_writers_never_let_a_reader_skip_an_event(pool: Pool) -> None:
    """Notification ids must commit in order (the recorder's table lock): a reader that
    follows the log from its last position, while writers insert, sees every id once."""
    writers, per_writer = 6, 40
    done = threading.Event()
    seen: list[int] = []

    def write(index: int) -> None:
        context = CommandContext(actor="cli:test", reason="concurrency")
        for n in range(per_writer):
            with recording(context, pool.pool_id):
                worker = Worker(
                    url=f"http://w{index}-{n}.example:11434",
                    name=f"w{index}-{n}",
                    labels=[],
                    capacity=1,
                )
            pool.store.store(worker)

    def read() -> None:
        position = int(pool.store.recorder.max_notification_id() or 0)
        while True:
            finished = done.is_set()
            batch = pool.store.recorder.select_notifications(start=position + 1, limit=100)
            for notification in batch:
                seen.append(notification.id)
                position = notification.id
            if finished and not batch:
                return

    start = int(pool.store.recorder.max_notification_id() or 0)
    reader = threading.Thread(target=read)
    reader.start()
    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    reader.join(timeout=30)
    assert seen == list(range(start + 1, start + 1 + writers * per_writer))


def test_a_long_flag_set_is_loaded_from_a_snapshot_of_what_was_saved(
    pool: Pool, database_url: str
) -> None:
    # 120 single changes cross the interval (50) twice; one 130-event save crosses it twice
    # more but takes one snapshot, of the state it saved.
    for value in range(1, 121):
        pool.settings.set_flag("api.rate_limit_per_minute", value, ADMIN)
    flags = pool.store.load(PoolSettings.create_id(pool.pool_id), PoolSettings)
    with recording(ADMIN, pool.pool_id):
        for value in range(121, 251):
            flags.change_flag(REGISTRY["api.rate_limit_per_minute"], value)
    pool.store.store(flags)

    with pool.database.connection() as conn:
        versions = [
            r["originator_version"]
            for r in conn.execute(
                "SELECT originator_version FROM archipel_snapshots WHERE originator_id = %s "
                "ORDER BY originator_version",
                (flags.id,),
            ).fetchall()
        ]
    assert versions == [50, 100, flags.version]
    # Another process (no cache) starts from the latest snapshot and gets the same state.
    other = PoolEventStore(postgres_env(database_url), pool_id=pool.pool_id)
    try:
        loaded = other.load(flags.id, PoolSettings)
        assert loaded.version == flags.version == 251
        assert loaded.values["api.rate_limit_per_minute"] == 250
    finally:
        other.close()
