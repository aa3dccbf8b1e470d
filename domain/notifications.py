"""Notifications for the admins of this pool (pool-local): what automations want them to know."""

from __future__ import annotations

import uuid
from enum import StrEnum

from eventsourcing.domain import event

from domain.aggregate import PoolAggregate
from domain.context import Scope

NOTIFICATION_NAMESPACE = uuid.UUID("9c1d2e3f-4a5b-4c6d-8e7f-0a1b2c3d4e5f")


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AdminNotification(PoolAggregate):
    """One notice, raised at most once per causing event (its id derives from that event)."""

    scope = Scope.LOCAL

    @event("Raised")
    def __init__(self, cause_event_id: str, severity: Severity, title: str, body: str) -> None:
        self.cause_event_id = cause_event_id
        self.severity = severity
        self.title = title
        self.body = body
        self.read_by: list[str] = []

    @staticmethod
    def create_id(cause_event_id: str) -> uuid.UUID:
        return uuid.uuid5(NOTIFICATION_NAMESPACE, cause_event_id)

    def mark_read(self, admin_id: str) -> bool:
        """Read state is per admin: one admin's click does not hide it from the others."""
        if admin_id in self.read_by:
            return False
        self._read(admin_id=admin_id)
        return True

    @event("Read")
    def _read(self, admin_id: str) -> None:
        self.read_by.append(admin_id)
