"""Changing flags through the application service, on the in-memory event store."""

from __future__ import annotations

import threading

import pytest

from application.settings import SettingsService
from domain.context import CommandContext, Scope
from domain.errors import ConcurrencyConflict, InvalidFlagValue, MissingReason
from domain.settings import ClusterSettings, PoolSettings
from tests.unit.memory import memory_store

ADMIN = CommandContext(actor="admin:alice", reason="tuning", correlation_id="corr-1")


def test_a_change_is_one_event_with_the_command_metadata() -> None:
    store = memory_store("pool-a")
    settings = SettingsService(store)

    settings.set_flag("pool.debug", True, ADMIN)

    notifications = store.notification_log.select(start=1, limit=10)
    assert [n.topic.rsplit(".", 1)[-1] for n in notifications] == ["Created", "FlagChanged"]
    stored = store.load(PoolSettings.create_id("pool-a"), PoolSettings)
    changed = store.events.get(stored.id)
    meta = list(changed)[-1].meta
    assert meta["actor"] == "admin:alice"
    assert meta["reason"] == "tuning"
    assert meta["correlation_id"] == "corr-1"
    assert meta["causation_id"] is None
    assert meta["origin_pool"] == "pool-a"
    assert meta["scope"] == "local"
    assert meta["occurred_at"] and meta["event_id"]
    assert settings.value("pool.debug") is True


def test_cluster_flags_go_to_the_replicated_aggregate() -> None:
    store = memory_store("pool-a")
    settings = SettingsService(store)
    settings.set_flag("cluster.failover_mode", "auto", ADMIN)
    cluster = store.load(ClusterSettings.create_id("pool-a"), ClusterSettings)
    assert cluster.scope is Scope.REPLICATED
    assert cluster.values == {"cluster.failover_mode": "auto"}


def test_setting_the_same_value_records_nothing() -> None:
    store = memory_store()
    settings = SettingsService(store)
    settings.set_flag("api.rate_limit_per_minute", 10, ADMIN)
    before = store.recorder.max_notification_id()
    settings.set_flag("api.rate_limit_per_minute", 10, ADMIN)
    assert store.recorder.max_notification_id() == before


def test_defaults_are_read_without_any_event() -> None:
    settings = SettingsService(memory_store())
    states = {s.spec.key: s for s in settings.current()}
    assert states["cluster.failover_mode"].value == "manual"
    assert all(state.is_default for state in states.values())


def test_a_bad_value_changes_nothing() -> None:
    store = memory_store()
    settings = SettingsService(store)
    with pytest.raises(InvalidFlagValue, match="at least 1"):
        settings.set_flag_from_text("api.rate_limit_per_minute", "0", ADMIN)
    assert store.recorder.max_notification_id() is None


def test_a_reason_is_required() -> None:
    with pytest.raises(MissingReason):
        SettingsService(memory_store()).set_flag("pool.debug", True, CommandContext("cli:bob"))


def test_concurrent_writers_conflict_instead_of_losing_an_update() -> None:
    store = memory_store("pool-a")
    SettingsService(store).set_flag("pool.debug", True, ADMIN)
    first = store.load(PoolSettings.create_id("pool-a"), PoolSettings)
    second = store.load(PoolSettings.create_id("pool-a"), PoolSettings)
    from domain.context import recording
    from domain.flags import REGISTRY

    with recording(ADMIN, "pool-a"):
        first.change_flag(REGISTRY["api.rate_limit_per_minute"], 5)
        second.change_flag(REGISTRY["auth.login_lockout_threshold"], 7)
    store.store(first)
    with pytest.raises(ConcurrencyConflict):
        store.store(second)
    reloaded = store.load(PoolSettings.create_id("pool-a"), PoolSettings)
    assert reloaded.values["api.rate_limit_per_minute"] == 5


def test_a_writer_behind_another_process_redoes_its_change_on_the_newer_state() -> None:
    # Two services on one store stand for two processes; each keeps the set it wrote last.
    store = memory_store("pool-a")
    here, there = SettingsService(store), SettingsService(store)
    here.set_flag("pool.debug", True, ADMIN)
    there.set_flag("api.rate_limit_per_minute", 5, ADMIN)  # `here` has not seen this one

    here.set_flag("auth.login_lockout_threshold", 7, ADMIN)  # conflicts, reloads, redoes
    reloaded = store.load(PoolSettings.create_id("pool-a"), PoolSettings)
    assert reloaded.values["api.rate_limit_per_minute"] == 5
    assert reloaded.values["auth.login_lockout_threshold"] == 7

    # "Already that value" is not believed of a stale copy: `there` set it back meanwhile.
    there.set_flag("pool.debug", False, ADMIN)
    here.set_flag("pool.debug", True, ADMIN)
    assert SettingsService(store).value("pool.debug") is True


def test_writers_of_one_process_take_turns_without_conflicts() -> None:
    store = memory_store("pool-a")
    settings = SettingsService(store)
    settings.set_flag("pool.debug", True, ADMIN)
    errors: list[BaseException] = []

    def change(value: int) -> None:
        # Changes queued together are saved together, each with its own command's metadata.
        context = CommandContext(actor=f"admin:{value}", reason=f"set {value}")
        try:
            settings.set_flag("api.rate_limit_per_minute", value, context)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=change, args=(60 + i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    recorded = store.recorder.select_notifications(start=1, limit=100)
    changes = [n for n in recorded if "FlagChanged" in n.topic]
    assert len(changes) == 1 + 16  # every change recorded, none lost to a conflict
    metas = [store.mapper.transcoder.decode(n.state)["meta"] for n in changes[1:]]
    assert sorted((m["actor"], m["reason"]) for m in metas) == sorted(
        (f"admin:{60 + i}", f"set {60 + i}") for i in range(16)
    )
