"""Who is changing what, and why: the metadata every stored event carries.

An application service opens a `recording(...)` block around a command; aggregates read the
active context when they trigger events. An event triggered outside such a block is refused,
so no state change can happen without an actor.
"""

from __future__ import annotations

import contextvars
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum

from domain.errors import InvalidActor, MissingCommandContext

ACTOR_KINDS = ("admin", "automation", "peer", "cli", "system")
_ACTOR = re.compile(rf"^({'|'.join(ACTOR_KINDS)}):[A-Za-z0-9_.@+\-]{{1,128}}$")


class Scope(StrEnum):
    """Where an aggregate's events may travel."""

    REPLICATED = "replicated"  # signed, shared with paired pools
    LOCAL = "local"  # sovereign: never leaves this pool


def check_actor(actor: str) -> str:
    if not _ACTOR.match(actor):
        raise InvalidActor(
            f"actor {actor!r} is not of the form <kind>:<id> with kind one of "
            f"{', '.join(ACTOR_KINDS)}"
        )
    return actor


@dataclass(frozen=True)
class CommandContext:
    """The part of an event's metadata that comes from whoever issued the command."""

    actor: str
    reason: str = ""
    correlation_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    causation_id: str | None = None

    def __post_init__(self) -> None:
        check_actor(self.actor)
        if len(self.reason) > 2000:
            raise InvalidActor("reason is longer than 2000 characters")

    def caused_by(self, event_id: str, actor: str) -> CommandContext:
        """Context for a follow-up command: same correlation, caused by `event_id`."""
        return replace(self, actor=check_actor(actor), causation_id=event_id)


@dataclass(frozen=True)
class _Recording:
    context: CommandContext
    origin_pool: str


_current: contextvars.ContextVar[_Recording | None] = contextvars.ContextVar(
    "archipel_recording", default=None
)


@contextmanager
def recording(context: CommandContext, origin_pool: str) -> Iterator[CommandContext]:
    """Every event triggered inside this block carries `context` as its metadata."""
    token = _current.set(_Recording(context, origin_pool))
    try:
        yield context
    finally:
        _current.reset(token)


def event_metadata(scope: Scope) -> dict[str, str | None]:
    """Metadata for one new event, from the active command context."""
    active = _current.get()
    if active is None:
        raise MissingCommandContext(
            "state changes must be made inside a command (actor and reason are required)"
        )
    ctx = active.context
    return {
        "event_id": str(uuid.uuid4()),
        "actor": ctx.actor,
        "reason": ctx.reason,
        "correlation_id": ctx.correlation_id,
        "causation_id": ctx.causation_id,
        "origin_pool": active.origin_pool,
        "occurred_at": datetime.now(UTC).isoformat(),
        "scope": scope.value,
    }
