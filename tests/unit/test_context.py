"""Every event carries who and why; nothing changes outside a command."""

from __future__ import annotations

import pytest

from domain.aggregate import PoolAggregate
from domain.context import CommandContext, Scope, recording
from domain.errors import InvalidActor, MissingCommandContext
from domain.settings import PoolSettings


def test_no_event_outside_a_command() -> None:
    with pytest.raises(MissingCommandContext):
        PoolSettings(pool_id="p")


@pytest.mark.parametrize(
    "actor", ["alice", "root:alice", "admin:", "admin:a b", "cli:" + "x" * 200]
)
def test_actors_must_name_their_kind(actor: str) -> None:
    with pytest.raises(InvalidActor):
        CommandContext(actor=actor)


def test_follow_up_commands_keep_the_correlation() -> None:
    first = CommandContext(actor="admin:alice", reason="r")
    follow = first.caused_by("event-1", "automation:balancer")
    assert follow.correlation_id == first.correlation_id
    assert follow.causation_id == "event-1"
    assert follow.actor == "automation:balancer"


def test_the_recording_block_sets_origin_pool() -> None:
    with recording(CommandContext(actor="system:boot", reason="r"), "pool-x"):
        settings = PoolSettings(pool_id="p")
    (created,) = settings.collect_events()
    assert created.meta["origin_pool"] == "pool-x"  # type: ignore[attr-defined]


def test_an_aggregate_without_scope_is_refused() -> None:
    with pytest.raises(TypeError, match="must declare its scope"):

        class Unscoped(PoolAggregate):
            pass


def test_every_aggregate_declares_a_scope() -> None:
    import domain.notifications
    import domain.personal
    import domain.settings  # noqa: F401  (import so that subclasses are registered)

    def all_subclasses(cls: type) -> list[type]:
        found = []
        for sub in cls.__subclasses__():
            found.append(sub)
            found.extend(all_subclasses(sub))
        return found

    ours = ("domain", "application", "infrastructure", "projections", "web")
    aggregates = [a for a in all_subclasses(PoolAggregate) if a.__module__.split(".")[0] in ours]
    assert len(aggregates) >= 4
    for aggregate in aggregates:
        assert isinstance(aggregate.scope, Scope), aggregate
