"""E-mail (pool-local): the SMTP server, who receives which notices, and each outgoing mail.

The SMTP password is sealed with the pool's master key before it becomes an event; the clear
text never reaches the event store, a log or an API answer.
"""

from __future__ import annotations

import re
import uuid
from enum import StrEnum
from typing import Any

from eventsourcing.domain import event

from domain.aggregate import PoolAggregate
from domain.context import Scope
from domain.errors import DomainError

MAIL_NAMESPACE = uuid.UUID("d5e6f708-192a-43b4-c5d6-e7f8091a2b3c")
_ADDRESS = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252}[A-Za-z0-9])?$|^\[[0-9a-fA-F:.]+\]$")
MAX_RECIPIENTS = 50


class SmtpSecurity(StrEnum):
    NONE = "none"
    STARTTLS = "starttls"
    TLS = "tls"


class NoticeKind(StrEnum):
    """What a recipient can subscribe to."""

    INCIDENT = "incident"  # an incident opened
    ESCALATION = "escalation"  # the failsafe escalated an unacknowledged incident
    MIGRATION = "migration"  # a migration waits for approval, or rolled back


class InvalidMailSettings(DomainError):
    code = "invalid_mail_settings"


class MailStateError(DomainError):
    code = "mail_state"


def check_address(address: str) -> str:
    address = address.strip()
    if len(address) > 254 or not _ADDRESS.match(address):
        raise InvalidMailSettings(f"{address!r} is not an e-mail address")
    return address


def check_server(host: str, port: int, sender: str) -> tuple[str, int, str]:
    host = host.strip()
    if not _HOST.match(host):
        raise InvalidMailSettings(f"{host!r} is not a host name or address")
    if not 1 <= port <= 65535:
        raise InvalidMailSettings("the port must be from 1 to 65535")
    return host, port, check_address(sender)


class SmtpSettings(PoolAggregate):
    """The pool's one SMTP server."""

    scope = Scope.LOCAL

    @event("Configured")
    def __init__(
        self,
        host: str,
        port: int,
        security: str,
        username: str,
        sealed_password: str | None,
        sender: str,
    ) -> None:
        self._set(host, port, security, username, sealed_password, sender)

    @staticmethod
    def create_id() -> uuid.UUID:
        return uuid.uuid5(MAIL_NAMESPACE, "smtp")

    def _set(
        self,
        host: str,
        port: int,
        security: str,
        username: str,
        sealed_password: str | None,
        sender: str,
    ) -> None:
        self.host = host
        self.port = port
        self.security = SmtpSecurity(security)
        self.username = username
        self.sealed_password = sealed_password
        self.sender = sender

    def reconfigure(
        self,
        host: str,
        port: int,
        security: str,
        username: str,
        sealed_password: str | None,
        sender: str,
    ) -> None:
        self._reconfigured(
            host=host,
            port=port,
            security=security,
            username=username,
            sealed_password=sealed_password,
            sender=sender,
        )

    @event("Reconfigured")
    def _reconfigured(
        self,
        host: str,
        port: int,
        security: str,
        username: str,
        sealed_password: str | None,
        sender: str,
    ) -> None:
        self._set(host, port, security, username, sealed_password, sender)


def check_recipients(items: list[tuple[str, list[str]]]) -> list[dict[str, Any]]:
    if len(items) > MAX_RECIPIENTS:
        raise InvalidMailSettings(f"at most {MAX_RECIPIENTS} recipients")
    seen: set[str] = set()
    entries: list[dict[str, Any]] = []
    for address, kinds in items:
        address = check_address(address)
        if address.lower() in seen:
            raise InvalidMailSettings(f"{address} is listed twice")
        seen.add(address.lower())
        try:
            chosen = sorted({NoticeKind(kind).value for kind in kinds})
        except ValueError:
            known = ", ".join(k.value for k in NoticeKind)
            raise InvalidMailSettings(
                f"unknown notice kind for {address} (known: {known})"
            ) from None
        entries.append({"address": address, "kinds": chosen})
    return entries


class Recipients(PoolAggregate):
    """Who receives which notices by e-mail. Pool-local, like the SMTP server that sends them."""

    scope = Scope.LOCAL

    @event("Set")
    def __init__(self, entries: list[dict[str, Any]]) -> None:
        self.entries = entries

    @staticmethod
    def create_id() -> uuid.UUID:
        return uuid.uuid5(MAIL_NAMESPACE, "recipients")

    def change(self, entries: list[dict[str, Any]]) -> bool:
        if entries == self.entries:
            return False
        self._changed(entries=entries)
        return True

    @event("Changed")
    def _changed(self, entries: list[dict[str, Any]]) -> None:
        self.entries = entries

    def for_kind(self, kind: NoticeKind) -> list[str]:
        return [str(e["address"]) for e in self.entries if kind.value in e["kinds"]]


class MailStatus(StrEnum):
    QUEUED = "queued"
    RETRYING = "retrying"
    SENT = "sent"
    FAILED = "failed"


class OutgoingMail(PoolAggregate):
    """One message to one address; its fate is events, so nothing is lost when SMTP is down."""

    scope = Scope.LOCAL

    @event("Queued")
    def __init__(self, cause: str, to: str, subject: str, body: str, kind: str) -> None:
        self.cause = cause
        self.to = to
        self.subject = subject
        self.body = body
        self.kind = kind
        self.status = MailStatus.QUEUED
        self.attempts = 0

    @staticmethod
    def create_id(cause: str, to: str) -> uuid.UUID:
        """One mail per cause and address: a redelivered cause queues nothing twice."""
        return uuid.uuid5(MAIL_NAMESPACE, f"{cause}:{to.lower()}")

    def attempt_failed(self, error: str) -> None:
        self._expect_unsent()
        self._attempt_failed(error=error[:500], attempt=self.attempts + 1)

    @event("AttemptFailed")
    def _attempt_failed(self, error: str, attempt: int) -> None:
        self.attempts = attempt
        self.status = MailStatus.RETRYING

    def sent(self, answer: str) -> None:
        self._expect_unsent()
        self._sent(answer=answer[:500], attempt=self.attempts + 1)

    @event("Sent")
    def _sent(self, answer: str, attempt: int) -> None:
        self.attempts = attempt
        self.status = MailStatus.SENT

    def give_up(self, error: str) -> None:
        self._expect_unsent()
        self._gave_up(error=error[:500])

    @event("GaveUp")
    def _gave_up(self, error: str) -> None:
        self.status = MailStatus.FAILED

    def retry(self) -> None:
        if self.status != MailStatus.FAILED:
            raise MailStateError(
                f"only a failed mail can be sent again (this one is {self.status})"
            )
        self._retried()

    @event("Retried")
    def _retried(self) -> None:
        self.status = MailStatus.QUEUED
        self.attempts = 0

    def _expect_unsent(self) -> None:
        if self.status in (MailStatus.SENT, MailStatus.FAILED):
            raise MailStateError(f"this mail is already {self.status.value}")
