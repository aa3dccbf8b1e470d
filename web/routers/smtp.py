"""SMTP: the pool's mail server (password write-only), a test send, and the outgoing mail log."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query

from domain.mail import SmtpSecurity
from projections.operations import list_mail
from web.deps import CurrentAdmin, Web
from web.schemas import MailPublic, MailsPublic, SmtpPublic, SmtpTest, SmtpTestPublic, SmtpUpdate

router = APIRouter(prefix="/api/smtp", tags=["smtp"])


def _smtp(web: Web) -> SmtpPublic:
    settings = web.pool.mail.settings()
    if settings is None:
        return SmtpPublic(
            configured=False,
            host="",
            port=587,
            security="starttls",
            username="",
            password_set=False,
            sender="",
            updated_at=None,
        )
    return SmtpPublic(
        configured=True,
        host=settings.host,
        port=settings.port,
        security=settings.security.value,
        username=settings.username,
        password_set=settings.sealed_password is not None,
        sender=settings.sender,
        updated_at=settings.modified_on,
    )


def mail_public(row: dict[str, Any]) -> MailPublic:
    return MailPublic(
        id=str(row["id"]),
        to=row["to_address"],
        subject=row["subject"],
        kind=row["kind"],
        status=row["status"],
        attempts=row["attempts"],
        last_error=row["last_error"],
        answer=row["answer"],
        queued_at=row["queued_at"],
        sent_at=row["sent_at"],
    )


@router.get("", operation_id="get_smtp", response_model=SmtpPublic)
def get_smtp(*, current: CurrentAdmin, web: Web) -> SmtpPublic:
    """The SMTP server (the password is never returned, only whether one is set)."""
    return _smtp(web)


@router.put("", operation_id="set_smtp", response_model=SmtpPublic)
def set_smtp(*, body: SmtpUpdate, current: CurrentAdmin, web: Web) -> SmtpPublic:
    """Set the SMTP server. The password is encrypted before it is stored."""
    web.pool.mail.configure(
        body.host,
        body.port,
        SmtpSecurity(body.security),
        body.username,
        body.password,
        body.sender,
        current.context(body.reason),
    )
    return _smtp(web)


@router.post("/test", operation_id="test_smtp", response_model=SmtpTestPublic)
def test_smtp(*, body: SmtpTest, current: CurrentAdmin, web: Web) -> SmtpTestPublic:
    """Send a test message now and show what the server answered."""
    ok, answer = web.pool.mail.send_test(body.to)
    return SmtpTestPublic(ok=ok, answer=answer)


@router.get("/mails", operation_id="list_mails", response_model=MailsPublic)
def list_mails(
    *, current: CurrentAdmin, web: Web, limit: int = Query(default=100, ge=1, le=1000)
) -> MailsPublic:
    """Outgoing mail, newest first: queued, retrying, sent or failed, with the server's answer."""
    with web.pool.database.connection() as conn:
        return MailsPublic(items=[mail_public(row) for row in list_mail(conn, limit)])


@router.post("/mails/{mail_id}/retry", operation_id="retry_mail", response_model=MailPublic)
def retry_mail(*, mail_id: str, current: CurrentAdmin, web: Web) -> MailPublic:
    """Send a failed mail again."""
    web.pool.mail.retry(mail_id, current.context("send the mail again"))
    web.pool.runner("operations").catch_up()
    with web.pool.database.connection() as conn:
        row = conn.execute("SELECT * FROM mail_view WHERE id = %s", (mail_id,)).fetchone()
    assert row is not None
    return mail_public(row)
