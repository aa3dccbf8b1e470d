"""The pool's incident journal (pool-local): what went wrong, who looks at it, how it ended.

Automations open incidents with a *cause key* (e.g. `worker_offline:<worker id>`); the same
cause while its incident is active updates that incident (an occurrence more) instead of
opening another. `IncidentCause` is the per-cause record that makes this decision consistent
without reading a projection: it names the active incident of the cause, if any.
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from eventsourcing.domain import event

from domain.aggregate import PoolAggregate
from domain.context import Scope
from domain.errors import DomainError
from domain.notifications import Severity

INCIDENT_NAMESPACE = uuid.UUID("b3c4d5e6-f708-4192-a3b4-c5d6e7f80912")
MAX_TEXT = 2000


class IncidentKind(StrEnum):
    WORKER_OFFLINE = "worker_offline"
    DEPLOY_FAILED = "deploy_failed"
    PEER_UNREACHABLE = "peer_unreachable"
    PEER_QUARANTINED = "peer_quarantined"
    BATCH_REJECTED = "batch_rejected"
    DISK_SPACE_LOW = "disk_space_low"
    MIGRATION_FAILED = "migration_failed"
    MANUAL = "manual"


class IncidentStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


class InvalidIncident(DomainError):
    code = "invalid_incident"


class IncidentStateError(DomainError):
    code = "incident_state"


def check_text(text: str, what: str, required: bool = True) -> str:
    text = text.strip()
    if required and not text:
        raise InvalidIncident(f"{what} must not be empty")
    if len(text) > MAX_TEXT:
        raise InvalidIncident(f"{what} must be at most {MAX_TEXT} characters")
    return text


class Incident(PoolAggregate):
    scope = Scope.LOCAL

    @event("Opened")
    def __init__(
        self,
        cause: str,
        generation: int,
        kind: str,
        severity: str,
        title: str,
        detail: str,
        subject: str,
    ) -> None:
        self.cause = cause
        self.generation = generation
        self.kind = IncidentKind(kind)
        self.severity = Severity(severity)
        self.title = title
        self.detail = detail
        self.subject = subject
        self.status = IncidentStatus.OPEN
        self.occurrences = 1
        self.assignee_id: str | None = None
        self.escalated = False

    @staticmethod
    def create_id(cause: str, generation: int) -> uuid.UUID:
        """Deterministic: the n-th incident of a cause, so a redelivered decision is a no-op."""
        return uuid.uuid5(INCIDENT_NAMESPACE, f"{cause}#{generation}")

    @property
    def active(self) -> bool:
        return self.status != IncidentStatus.RESOLVED

    def _check_active(self) -> None:
        if not self.active:
            raise IncidentStateError("this incident is resolved")

    def recur(self, detail: str) -> None:
        self._check_active()
        self._recurred(detail=detail[:MAX_TEXT])

    @event("Recurred")
    def _recurred(self, detail: str) -> None:
        self.occurrences += 1
        self.detail = detail

    def acknowledge(self) -> None:
        self._check_active()
        if self.status == IncidentStatus.ACKNOWLEDGED:
            raise IncidentStateError("this incident is already acknowledged")
        self._acknowledged()

    @event("Acknowledged")
    def _acknowledged(self) -> None:
        self.status = IncidentStatus.ACKNOWLEDGED

    def assign(self, admin_id: str) -> None:
        self._check_active()
        if admin_id == self.assignee_id:
            raise IncidentStateError("this incident is already assigned to that admin")
        self._assigned(admin_id=admin_id)

    @event("Assigned")
    def _assigned(self, admin_id: str) -> None:
        self.assignee_id = admin_id

    def comment(self, text: str) -> None:
        self._commented(text=check_text(text, "a comment"))

    @event("Commented")
    def _commented(self, text: str) -> None:
        pass

    def escalate(self, recipients: list[str]) -> None:
        self._check_active()
        self._escalated(recipients=list(recipients))

    @event("Escalated")
    def _escalated(self, recipients: list[str]) -> None:
        self.escalated = True

    def resolve(self, resolution: str) -> None:
        self._check_active()
        self._resolved(resolution=check_text(resolution, "the resolution"))

    @event("Resolved")
    def _resolved(self, resolution: str) -> None:
        self.status = IncidentStatus.RESOLVED


class IncidentCause(PoolAggregate):
    """Which incident, if any, is active for one cause; how many it had."""

    scope = Scope.LOCAL

    @event("Tracked")
    def __init__(self, cause: str) -> None:
        self.cause = cause
        self.active_incident: str | None = None
        self.generation = 0

    @staticmethod
    def create_id(cause: str) -> uuid.UUID:
        return uuid.uuid5(INCIDENT_NAMESPACE, f"cause:{cause}")

    def opened(self, incident_id: str) -> None:
        self._opened(incident_id=incident_id)

    @event("IncidentOpened")
    def _opened(self, incident_id: str) -> None:
        self.active_incident = incident_id
        self.generation += 1

    def closed(self) -> None:
        if self.active_incident is not None:
            self._closed()

    @event("IncidentClosed")
    def _closed(self) -> None:
        self.active_incident = None
