"""The base of every Archipel aggregate: a declared scope and metadata on every event."""

from __future__ import annotations

from typing import Any, ClassVar

from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic

from domain.context import Scope, event_metadata


def event_topic(aggregate: type[Aggregate], event_name: str) -> str:
    """The stored topic of an event class that `@event` generated on `aggregate`."""
    return get_topic(getattr(aggregate, event_name))


class PoolAggregate(Aggregate):
    """An aggregate whose events carry command metadata and whose scope is declared.

    Subclasses set `scope`; every event they trigger gets a `meta` mapping (event id, actor,
    reason, correlation and causation ids, origin pool, time, scope) from the active
    `domain.context.recording` block.
    """

    scope: ClassVar[Scope]

    class Event(Aggregate.Event):
        meta: dict[str, Any]

    class Created(Event, Aggregate.Created):
        pass

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not isinstance(cls.__dict__.get("scope", getattr(cls, "scope", None)), Scope):
            raise TypeError(
                f"{cls.__qualname__} must declare its scope (Scope.LOCAL or REPLICATED)"
            )

    @classmethod
    def _create(cls, event_class: Any, *, id: Any = None, **kwargs: Any) -> Any:
        kwargs["meta"] = event_metadata(cls.scope)
        return super()._create(event_class, id=id, **kwargs)

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        kwargs["meta"] = event_metadata(type(self).scope)
        super().trigger_event(event_class, **kwargs)
