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


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str, password: str) -> bool: ...

    def needs_rehash(self, password_hash: str) -> bool: ...

    def is_common(self, password: str) -> bool: ...


class Digester(Protocol):
    """Keyed digests: look things up by a secret-dependent hash instead of clear text."""

    def email(self, email: str) -> str: ...


class SessionStore(Protocol):
    def open(self, admin_id: str, client: str) -> str:
        """A new session for the admin; returns its id (shown once, stored hashed)."""
        ...

    def find(self, session_id: str, idle_seconds: int, absolute_seconds: int) -> str | None:
        """The admin id of a live session (and mark it used), or None."""
        ...

    def close(self, session_id: str) -> None: ...

    def close_all(self, admin_id: str) -> int: ...


class LoginThrottle(Protocol):
    def retry_after(self, keys: list[str], threshold: int) -> int:
        """Seconds to wait before trying again (0: go ahead)."""
        ...

    def failed(self, keys: list[str], threshold: int) -> None:
        """Count a failure; from `threshold` failures on, lock the keys for a while."""
        ...

    def succeeded(self, keys: list[str]) -> None: ...


class PoolIdentityKeys(Protocol):
    def generate(self) -> tuple[str, str]:
        """Create the pool's Ed25519 key pair; returns (key id, public key, base64)."""
        ...
