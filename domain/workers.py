"""A pool's workers: Ollama machines registered by URL, with their status over time.

Registration, edits, drain and removal are admin commands; online/offline transitions are
decisions of the health automation. Busy or idle is live telemetry, not an event per flap.
"""

from __future__ import annotations

import re
import uuid
from enum import StrEnum
from urllib.parse import urlsplit

from eventsourcing.domain import event

from domain.aggregate import PoolAggregate
from domain.context import Scope
from domain.errors import DomainError

WORKER_NAMESPACE = uuid.UUID("7e1f2a3b-4c5d-4e6f-8a9b-0c1d2e3f4a5b")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:=/-]{0,63}$")
MAX_LABELS = 20
MAX_CAPACITY = 1024


class WorkerStatus(StrEnum):
    UNKNOWN = "unknown"
    ONLINE = "online"
    OFFLINE = "offline"


class InvalidWorker(DomainError):
    code = "invalid_worker"


class WorkerStateError(DomainError):
    code = "worker_state"


def normalise_url(url: str) -> str:
    """`http(s)://host:port` without path; the identity of a worker."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidWorker(f"{url!r} is not an http:// or https:// URL with a host")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidWorker("a worker URL has no path, query or fragment (e.g. http://gpu-1:11434)")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise InvalidWorker(f"{url!r} has an invalid port") from None
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    return f"{parts.scheme}://{host}:{port}"


def check_profile(name: str, labels: list[str], capacity: int) -> tuple[str, list[str], int]:
    name = name.strip()
    if not 1 <= len(name) <= 64:
        raise InvalidWorker("the name must have 1 to 64 characters")
    if len(labels) > MAX_LABELS:
        raise InvalidWorker(f"at most {MAX_LABELS} labels")
    for label in labels:
        if not _LABEL.match(label):
            raise InvalidWorker(
                f"label {label!r} must be 1 to 64 letters, digits or . _ : = / - (no spaces)"
            )
    if not 1 <= capacity <= MAX_CAPACITY:
        raise InvalidWorker(f"capacity must be from 1 to {MAX_CAPACITY} concurrent requests")
    return name, sorted(set(labels)), capacity


class Worker(PoolAggregate):
    # Workers as the cluster sees them: replicated to paired pools.
    scope = Scope.REPLICATED

    @event("Registered")
    def __init__(self, url: str, name: str, labels: list[str], capacity: int) -> None:
        self.url = url
        self._profile(name, labels, capacity)
        self.status = WorkerStatus.UNKNOWN
        self.status_reason = "not checked yet"
        self.drained = False
        self.removed = False

    @staticmethod
    def create_id(url: str) -> uuid.UUID:
        return uuid.uuid5(WORKER_NAMESPACE, url)

    def _profile(self, name: str, labels: list[str], capacity: int) -> None:
        self.name = name
        self.labels = list(labels)
        self.capacity = capacity

    def _check_present(self) -> None:
        if self.removed:
            raise WorkerStateError("this worker was removed; register it again to use it")

    def edit(self, name: str, labels: list[str], capacity: int) -> bool:
        self._check_present()
        name, labels, capacity = check_profile(name, labels, capacity)
        if (name, labels, capacity) == (self.name, self.labels, self.capacity):
            return False
        self._edited(name=name, labels=labels, capacity=capacity)
        return True

    @event("Edited")
    def _edited(self, name: str, labels: list[str], capacity: int) -> None:
        self._profile(name, labels, capacity)

    def drain(self) -> None:
        self._check_present()
        if self.drained:
            raise WorkerStateError("this worker is already draining")
        self._drained()

    @event("Drained")
    def _drained(self) -> None:
        self.drained = True

    def undrain(self) -> None:
        self._check_present()
        if not self.drained:
            raise WorkerStateError("this worker is not draining")
        self._undrained()

    @event("Undrained")
    def _undrained(self) -> None:
        self.drained = False

    def remove(self) -> None:
        self._check_present()
        self._removed()

    @event("Removed")
    def _removed(self) -> None:
        self.removed = True

    def register_again(self, name: str, labels: list[str], capacity: int) -> None:
        if not self.removed:
            raise WorkerStateError(f"a worker with URL {self.url} is already registered")
        name, labels, capacity = check_profile(name, labels, capacity)
        self._registered_again(name=name, labels=labels, capacity=capacity)

    @event("RegisteredAgain")
    def _registered_again(self, name: str, labels: list[str], capacity: int) -> None:
        self._profile(name, labels, capacity)
        self.removed = False
        self.drained = False
        self.status = WorkerStatus.UNKNOWN
        self.status_reason = "not checked yet"

    def record_status(self, status: WorkerStatus, reason: str) -> bool:
        """The health automation's verdict; an event only when the status changes."""
        if self.removed or status == self.status:
            return False
        self._status_changed(status=status.value, reason=reason[:500])
        return True

    @event("StatusChanged")
    def _status_changed(self, status: str, reason: str) -> None:
        self.status = WorkerStatus(status)
        self.status_reason = reason
