"""Opening, updating and closing incidents: admins' commands and automations' decisions."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from application.ports import AggregateStore
from domain.context import CommandContext, recording
from domain.errors import ConcurrencyConflict, NotFound
from domain.incidents import Incident, IncidentCause, IncidentKind, check_text
from domain.notifications import Severity

ATTEMPTS = 5  # optimistic retries when two writers touch the same cause at once
REPEAT_WINDOW = timedelta(minutes=10)


@dataclass(frozen=True)
class Trouble:
    """What an automation saw: the cause key makes repeated sightings one incident."""

    cause: str
    kind: IncidentKind
    severity: Severity
    title: str
    detail: str
    subject: str = ""


class IncidentService:
    def __init__(self, store: AggregateStore) -> None:
        self._store = store

    def get(self, incident_id: str) -> Incident:
        try:
            return self._store.load(UUID(incident_id), Incident)
        except ValueError:
            raise NotFound(f"no incident {incident_id}") from None
        except NotFound:
            raise NotFound(f"no incident {incident_id}") from None

    def report(self, trouble: Trouble, context: CommandContext) -> tuple[Incident, bool]:
        """Open an incident for this cause, or count one more occurrence of the active one.

        Returns the incident and whether it was opened now.
        """
        for attempt in range(ATTEMPTS):
            cause = self._cause(trouble.cause)
            with recording(context, self._store.pool_id):
                if cause is None:
                    cause = IncidentCause(cause=trouble.cause)
                if cause.active_incident is not None:
                    incident = self._store.load(UUID(cause.active_incident), Incident)
                    if incident.detail == trouble.detail and not self._stale(incident):
                        return incident, False  # seen moments ago: not another event
                    incident.recur(trouble.detail)
                    opened = False
                    pending: tuple[Incident | IncidentCause, ...] = (incident,)
                else:
                    incident = Incident(
                        cause=trouble.cause,
                        generation=cause.generation,
                        kind=trouble.kind.value,
                        severity=trouble.severity.value,
                        title=trouble.title[:200],
                        detail=trouble.detail[:2000],
                        subject=trouble.subject,
                    )
                    cause.opened(str(incident.id))
                    opened = True
                    pending = (cause, incident)
                try:
                    self._store.store(*pending)
                    return incident, opened
                except ConcurrencyConflict:
                    if attempt == ATTEMPTS - 1:
                        raise
        raise AssertionError("unreachable")

    @staticmethod
    def _stale(incident: Incident) -> bool:
        """Last recorded longer ago than the repeat window (an unchanged sighting within it
        adds nothing: a peer failing every 3 s must not write 28,800 events a day)."""
        return datetime.now(UTC) - incident.modified_on >= REPEAT_WINDOW

    def clear(self, cause_key: str, resolution: str, context: CommandContext) -> Incident | None:
        """The cause went away (the worker answers again): resolve its active incident."""
        cause = self._cause(cause_key)
        if cause is None or cause.active_incident is None:
            return None
        incident = self._store.load(UUID(cause.active_incident), Incident)
        with recording(context, self._store.pool_id):
            incident.resolve(resolution)
            cause.closed()
            try:
                self._store.store(incident, cause)
            except ConcurrencyConflict:
                return None  # someone resolved or updated it meanwhile; next sighting decides
        return incident

    def open_by_hand(
        self, title: str, detail: str, severity: Severity, context: CommandContext
    ) -> Incident:
        trouble = Trouble(
            cause=f"manual:{uuid.uuid4()}",
            kind=IncidentKind.MANUAL,
            severity=severity,
            title=check_text(title, "the title")[:200],
            detail=check_text(detail, "the detail", required=False),
        )
        incident, _ = self.report(trouble, context)
        return incident

    def acknowledge(self, incident_id: str, context: CommandContext) -> Incident:
        return self._change(incident_id, context, lambda i: i.acknowledge())

    def assign(self, incident_id: str, admin_id: str, context: CommandContext) -> Incident:
        return self._change(incident_id, context, lambda i: i.assign(admin_id))

    def comment(self, incident_id: str, text: str, context: CommandContext) -> Incident:
        return self._change(incident_id, context, lambda i: i.comment(text))

    def resolve(self, incident_id: str, resolution: str, context: CommandContext) -> Incident:
        incident = self.get(incident_id)
        cause = self._cause(incident.cause)
        with recording(context, self._store.pool_id):
            incident.resolve(resolution)
            pending: list[Incident | IncidentCause] = [incident]
            if cause is not None and cause.active_incident == str(incident.id):
                cause.closed()
                pending.append(cause)
            self._store.store(*pending)
        return incident

    def _change(
        self, incident_id: str, context: CommandContext, change: Callable[[Incident], None]
    ) -> Incident:
        incident = self.get(incident_id)
        with recording(context, self._store.pool_id):
            change(incident)
            self._store.store(incident)
        return incident

    def _cause(self, cause: str) -> IncidentCause | None:
        try:
            return self._store.load(IncidentCause.create_id(cause), IncidentCause)
        except NotFound:
            return None
