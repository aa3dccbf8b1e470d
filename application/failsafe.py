"""What follows an incident: the admins are told at once, and escalated to if nobody answers."""

from __future__ import annotations

from uuid import UUID

from application.incidents import IncidentService
from application.mail import MailService
from application.ports import AggregateStore
from domain.aggregate import PoolAggregate
from domain.context import CommandContext, recording
from domain.errors import ConcurrencyConflict, NotFound
from domain.incidents import Incident, IncidentStatus
from domain.mail import NoticeKind
from domain.notifications import AdminNotification, Severity

FAILSAFE_ACTOR = "automation:failsafe"
NOTIFIER_ACTOR = "automation:notifier"


def incident_link(public_url: str, incident_id: str) -> str:
    return f"{public_url.rstrip('/')}/incidents?incident={incident_id}"


class FailsafeAutomation:
    def __init__(
        self, store: AggregateStore, incidents: IncidentService, mail: MailService
    ) -> None:
        self._store = store
        self._incidents = incidents
        self._mail = mail

    def escalate_overdue(self, incident_id: str, delay_seconds: int, public_url: str) -> bool:
        """The failsafe: escalate an incident still unacknowledged after the delay. False if it
        was acknowledged, resolved or escalated meanwhile."""
        try:
            incident = self._store.load(UUID(incident_id), Incident)
        except NotFound:
            return False
        if incident.status != IncidentStatus.OPEN or incident.escalated:
            return False
        context = CommandContext(
            actor=FAILSAFE_ACTOR, reason=f"unacknowledged for more than {delay_seconds} s"
        )
        minutes = max(1, delay_seconds // 60)
        why = f"This incident has not been acknowledged for over {minutes} minute(s)."
        return self.escalate(incident, public_url, context, why)

    def escalate(
        self, incident: Incident, public_url: str, context: CommandContext, why: str
    ) -> bool:
        """The `Escalated` event and a mail to each escalation recipient, saved together."""
        recipients = self._mail.addresses_for(NoticeKind.ESCALATION)
        link = incident_link(public_url, str(incident.id))
        with recording(context, self._store.pool_id):
            incident.escalate(recipients)
            pending: list[PoolAggregate] = [incident]
            pending.extend(
                self._mail.compose(
                    f"escalation:{incident.id}:{incident.version}",
                    NoticeKind.ESCALATION,
                    f"[Archipel] ESCALATED ({incident.severity.value}): {incident.title}",
                    f"{why}\n\n{incident.title}\n{incident.detail}\n\n"
                    f"Occurrences: {incident.occurrences}\nOpen it: {link}\n",
                )
            )
            if not recipients:
                pending.append(
                    AdminNotification(
                        cause_event_id=f"escalation-unsent:{incident.id}:{incident.version}",
                        severity=Severity.WARNING,
                        title=f"Escalated, but nobody to e-mail: {incident.title}",
                        body="No recipient receives escalations; add one on the SMTP page.",
                    )
                )
            try:
                self._store.store(*pending)
            except ConcurrencyConflict:
                return False
        return True

    def announce(self, incident_id: str, cause_event_id: str, public_url: str) -> bool:
        """A new incident: a notification for the bell and a mail to the incident recipients.
        Idempotent by the opening event's id."""
        incident = self._incidents.get(incident_id)
        context = CommandContext(
            actor=NOTIFIER_ACTOR,
            reason=f"incident opened: {incident.title}"[:2000],
            causation_id=cause_event_id,
        )
        notice_id = AdminNotification.create_id(cause_event_id)
        try:
            self._store.load(notice_id, AdminNotification)
            return False  # announced before (a redelivery)
        except NotFound:
            pass
        link = incident_link(public_url, incident_id)
        with recording(context, self._store.pool_id):
            notice = AdminNotification(
                cause_event_id=cause_event_id,
                severity=incident.severity,
                title=incident.title,
                body=incident.detail[:500],
            )
            mails = self._mail.compose(
                f"opened:{cause_event_id}",
                NoticeKind.INCIDENT,
                f"[Archipel] incident ({incident.severity.value}): {incident.title}",
                f"{incident.title}\n{incident.detail}\n\nOpen it: {link}\n",
            )
            try:
                self._store.store(notice, *mails)
            except ConcurrencyConflict:
                return False
        return True
