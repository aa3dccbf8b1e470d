"""The SMTP server, the recipients, and sending mail with retries that never lose a message."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from application.ports import A, AggregateStore
from domain.context import CommandContext, recording
from domain.errors import ConcurrencyConflict, DomainError, NotFound
from domain.mail import (
    MailStatus,
    NoticeKind,
    OutgoingMail,
    Recipients,
    SmtpSecurity,
    SmtpSettings,
    check_address,
    check_recipients,
    check_server,
)
from domain.notifications import AdminNotification, Severity

MAIL_ACTOR = "automation:mail"
MAX_ATTEMPTS = 5  # then the mail is marked failed and the admins are notified


class SmtpNotConfigured(DomainError):
    code = "smtp_not_configured"


@dataclass(frozen=True)
class SmtpServer:
    """What the sender needs, with the password in clear (in memory only)."""

    host: str
    port: int
    security: SmtpSecurity
    username: str
    password: str | None
    sender: str


class MailError(Exception):
    """The SMTP server refused or could not be reached; `answer` is what it said."""

    def __init__(self, answer: str) -> None:
        super().__init__(answer)
        self.answer = answer


class MailSender(Protocol):
    def send(self, server: SmtpServer, to: str, subject: str, body: str) -> str:
        """Send one message; returns the server's answer, or raises `MailError`."""
        ...


class SecretBox(Protocol):
    def seal(self, text: str) -> str: ...

    def open(self, sealed: str) -> str: ...


class MailService:
    def __init__(self, store: AggregateStore, secrets: SecretBox, sender: MailSender) -> None:
        self._store = store
        self._secrets = secrets
        self._sender = sender

    # The server ---------------------------------------------------------------------------

    def settings(self) -> SmtpSettings | None:
        return self._find(SmtpSettings.create_id(), SmtpSettings)

    def configure(
        self,
        host: str,
        port: int,
        security: SmtpSecurity,
        username: str,
        password: str | None,
        sender: str,
        context: CommandContext,
    ) -> SmtpSettings:
        """`password` None keeps the current one; "" removes it."""
        host, port, sender = check_server(host, port, sender)
        current = self.settings()
        if password is None:
            sealed = current.sealed_password if current is not None else None
        else:
            sealed = self._secrets.seal(password) if password else None
        values = (host, port, security.value, username.strip(), sealed, sender)
        with recording(context, self._store.pool_id):
            if current is None:
                current = SmtpSettings(*values)
            else:
                current.reconfigure(*values)
            self._store.store(current)
        return current

    def server(self) -> SmtpServer:
        settings = self.settings()
        if settings is None:
            raise SmtpNotConfigured("no SMTP server is configured yet (see the SMTP page)")
        password = (
            self._secrets.open(settings.sealed_password) if settings.sealed_password else None
        )
        return SmtpServer(
            settings.host,
            settings.port,
            settings.security,
            settings.username,
            password,
            settings.sender,
        )

    def send_test(self, to: str) -> tuple[bool, str]:
        """Send a test message now (not queued); returns success and the server's answer."""
        to = check_address(to)
        try:
            answer = self._sender.send(
                self.server(),
                to,
                "Archipel test e-mail",
                "This is a test message from your Archipel pool. If you read this, the SMTP "
                "settings work.",
            )
        except MailError as error:
            return False, error.answer
        return True, answer

    # Recipients ---------------------------------------------------------------------------

    def recipients(self) -> Recipients | None:
        return self._find(Recipients.create_id(), Recipients)

    def set_recipients(
        self, items: list[tuple[str, list[str]]], context: CommandContext
    ) -> list[dict[str, Any]]:
        entries = check_recipients(items)
        current = self.recipients()
        with recording(context, self._store.pool_id):
            if current is None:
                current = Recipients(entries=entries)
                self._store.store(current)
            elif current.change(entries):
                self._store.store(current)
        return current.entries

    def addresses_for(self, kind: NoticeKind) -> list[str]:
        recipients = self.recipients()
        return recipients.for_kind(kind) if recipients is not None else []

    # Outgoing mail ------------------------------------------------------------------------

    def compose(self, cause: str, kind: NoticeKind, subject: str, body: str) -> list[OutgoingMail]:
        """New mails (to save with the decision that caused them) for the kind's recipients."""
        mails = []
        for to in self.addresses_for(kind):
            mail_id = OutgoingMail.create_id(cause, to)
            if self._find(mail_id, OutgoingMail) is None:
                mails.append(
                    OutgoingMail(
                        cause=cause,
                        to=to,
                        subject=" ".join(subject.split())[:250],  # one header line
                        body=body,
                        kind=kind.value,
                    )
                )
        return mails

    def get(self, mail_id: str) -> OutgoingMail:
        try:
            found = self._find(UUID(mail_id), OutgoingMail)
        except ValueError:
            found = None
        if found is None:
            raise NotFound(f"no mail {mail_id}")
        return found

    def deliver(self, mail_id: str, cause: str) -> MailStatus:
        """One delivery attempt (the `send_mail` actor). Raises `MailError` to be retried;
        after MAX_ATTEMPTS the mail is failed and the admins get a notification."""
        mail = self.get(mail_id)
        if mail.status in (MailStatus.SENT, MailStatus.FAILED):
            return mail.status  # a redelivery
        context = CommandContext(actor=MAIL_ACTOR, reason=f"mail to {mail.to}", causation_id=cause)
        try:
            answer = self._sender.send(self.server(), mail.to, mail.subject, mail.body)
        except (MailError, SmtpNotConfigured) as error:
            detail = error.answer if isinstance(error, MailError) else error.detail
            with recording(context, self._store.pool_id):
                mail.attempt_failed(detail)
                pending: list[OutgoingMail | AdminNotification] = [mail]
                if mail.attempts >= MAX_ATTEMPTS:
                    mail.give_up(f"{mail.attempts} attempts failed; last: {detail}")
                    pending.append(
                        AdminNotification(
                            cause_event_id=f"mail-failed:{mail.id}:{mail.version}",
                            severity=Severity.WARNING,
                            title=f"E-mail to {mail.to} could not be sent",
                            body=f"{mail.subject!r}: {detail}. It is kept in the mail log; "
                            "send it again from the SMTP page once the server works.",
                        )
                    )
                self._save(*pending)
            if len(pending) > 1:
                return MailStatus.FAILED  # given up: the admins were notified
            raise MailError(detail) from error
        with recording(context, self._store.pool_id):
            mail.sent(answer)
            self._save(mail)
        return mail.status

    def retry(self, mail_id: str, context: CommandContext) -> OutgoingMail:
        mail = self.get(mail_id)
        with recording(context, self._store.pool_id):
            mail.retry()
            self._store.store(mail)
        return mail

    def _save(self, *aggregates: OutgoingMail | AdminNotification) -> None:
        # A conflict means another delivery of the same message recorded its outcome first.
        with contextlib.suppress(ConcurrencyConflict):
            self._store.store(*aggregates)

    def _find(self, aggregate_id: UUID, kind: type[A]) -> A | None:
        try:
            return self._store.load(aggregate_id, kind)
        except NotFound:
            return None
