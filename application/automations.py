"""Background work triggered by events: which events need work, and the decisions it makes.

The outbox dispatcher turns each routed event into exactly one Dramatiq message; the actor
calls a method here. Handlers are idempotent by event id, because delivery is at least once.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from application.ports import AggregateStore
from domain.aggregate import event_topic
from domain.catalog import CatalogModel
from domain.context import CommandContext, recording
from domain.errors import ConcurrencyConflict, NotFound
from domain.federation import Peer
from domain.incidents import Incident
from domain.mail import OutgoingMail
from domain.migrations import Migration
from domain.notifications import AdminNotification, Severity
from domain.settings import FlagSet
from domain.workers import Worker


@dataclass(frozen=True)
class WorkRoute:
    topic: str  # event topic in the store
    actor: str  # Dramatiq actor that does the work


ROUTES: tuple[WorkRoute, ...] = (
    WorkRoute(event_topic(FlagSet, "FlagChanged"), "announce_flag_change"),
    WorkRoute(event_topic(CatalogModel, "Assigned"), "deploy_model"),
    WorkRoute(event_topic(CatalogModel, "Unassigned"), "undeploy_model"),
    WorkRoute(event_topic(Peer, "Paired"), "introduce_peer"),
    WorkRoute(event_topic(Peer, "PairedAgain"), "introduce_peer"),
    WorkRoute(event_topic(Worker, "StatusChanged"), "worker_status_changed"),
    WorkRoute(event_topic(Incident, "Opened"), "announce_incident"),
    WorkRoute(event_topic(OutgoingMail, "Queued"), "send_mail"),
    WorkRoute(event_topic(OutgoingMail, "Retried"), "send_mail"),
    WorkRoute(event_topic(Migration, "Created"), "run_migration"),
    WorkRoute(event_topic(Migration, "Approved"), "run_migration"),
)


def routes_for(topic: str) -> list[WorkRoute]:
    return [route for route in ROUTES if route.topic == topic]


class NotificationAutomation:
    """Raises admin notifications; actor `automation:notifier`."""

    actor = "automation:notifier"

    def __init__(self, store: AggregateStore) -> None:
        self._store = store

    def announce_flag_change(self, payload: dict[str, Any], meta: dict[str, Any]) -> bool:
        """Tell this pool's admins a flag changed. False if already announced (redelivery)."""
        cause = str(meta["event_id"])
        context = CommandContext(
            actor=self.actor,
            reason=f"flag {payload['key']} changed",
            correlation_id=str(meta.get("correlation_id") or cause),
            causation_id=cause,
        )
        title = (
            f"{payload['key']} changed from {json.dumps(payload['old_value'])} "
            f"to {json.dumps(payload['new_value'])}"
        )
        body = f"By {meta.get('actor', 'unknown')}: {meta.get('reason') or 'no reason given'}"
        with recording(context, self._store.pool_id):
            notice = AdminNotification(
                cause_event_id=cause, severity=Severity.INFO, title=title, body=body
            )
            try:
                self._store.store(notice)
            except ConcurrencyConflict:
                return False  # this event was announced before: at-least-once delivery
        return True

    def mark_read(self, notification_id: str, admin_id: str, context: CommandContext) -> bool:
        try:
            notice = self._store.load(uuid.UUID(notification_id), AdminNotification)
        except (ValueError, NotFound):
            raise NotFound(f"no notification {notification_id}") from None
        with recording(context, self._store.pool_id):
            if not notice.mark_read(admin_id):
                return False
            try:
                self._store.store(notice)
            except ConcurrencyConflict:
                return False  # read in another tab at the same moment
        return True
