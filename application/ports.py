"""What the application layer needs from the outside, as protocols the infrastructure fulfils."""

from __future__ import annotations

from typing import Protocol, TypeVar
from uuid import UUID

from domain.aggregate import PoolAggregate
from domain.personal import Sealed

A = TypeVar("A", bound=PoolAggregate)


class AggregateStore(Protocol):
    """The pool's event store, seen as a repository of aggregates."""

    @property
    def pool_id(self) -> str: ...

    def load(self, aggregate_id: UUID, kind: type[A]) -> A:
        """The aggregate, or `NotFound`."""
        ...

    def store(self, *aggregates: PoolAggregate) -> int | None:
        """Save pending events atomically; `ConcurrencyConflict` if another writer was first.

        Returns the notification id of the last stored event (None if nothing was pending).
        """
        ...


class PersonalDataVault(Protocol):
    """Per-person data keys: seal and open personal fields, forget a person for good."""

    def seal(self, subject: str, text: str) -> Sealed: ...

    def unseal(self, sealed: Sealed) -> str | None:
        """The clear text, or None once the subject's key was erased."""
        ...

    def forget(self, subject: str) -> bool:
        """Delete the subject's key; True if there was one."""
        ...
