"""In-app notifications (the bell, read state per admin) and the e-mail recipients."""

from __future__ import annotations

from fastapi import APIRouter, Query

from domain.mail import NoticeKind
from projections.notifications import list_notifications, unread_count, unread_ids
from web.deps import CurrentAdmin, Web
from web.schemas import (
    NotificationPublic,
    NotificationsPublic,
    RecipientPublic,
    RecipientsPublic,
    RecipientsUpdate,
    UnreadPublic,
)

router = APIRouter(prefix="/api/notifications", tags=["notifications"])


def _recipients(web: Web) -> RecipientsPublic:
    current = web.pool.mail.recipients()
    entries = current.entries if current is not None else []
    return RecipientsPublic(
        items=[RecipientPublic.model_validate(entry) for entry in entries],
        kinds=[kind.value for kind in NoticeKind],
    )


@router.get("/recipients", operation_id="get_recipients", response_model=RecipientsPublic)
def get_recipients(*, current: CurrentAdmin, web: Web) -> RecipientsPublic:
    """Who receives which notices by e-mail."""
    return _recipients(web)


@router.put("/recipients", operation_id="set_recipients", response_model=RecipientsPublic)
def set_recipients(*, body: RecipientsUpdate, current: CurrentAdmin, web: Web) -> RecipientsPublic:
    """Replace the recipient list."""
    web.pool.mail.set_recipients(
        [(item.address, item.kinds) for item in body.items], current.context(body.reason)
    )
    return _recipients(web)


@router.get("", operation_id="list_notifications", response_model=NotificationsPublic)
def list_all(
    *, current: CurrentAdmin, web: Web, limit: int = Query(default=50, ge=1, le=500)
) -> NotificationsPublic:
    """Recent notifications for the bell, with this admin's unread count."""
    with web.pool.database.connection() as conn:
        rows = list_notifications(conn, current.admin_id, limit)
        unread = unread_count(conn, current.admin_id)
    return NotificationsPublic(
        items=[
            NotificationPublic(
                id=str(r["id"]),
                severity=r["severity"],
                title=r["title"],
                body=r["body"],
                raised_at=r["raised_at"],
                read=r["read"],
            )
            for r in rows
        ],
        unread=unread,
    )


def _mark(web: Web, current: CurrentAdmin, ids: list[str]) -> UnreadPublic:
    context = current.context("read")
    for notification_id in ids:
        web.pool.notifier.mark_read(notification_id, current.admin_id, context)
    web.pool.runner("notifications").catch_up()
    with web.pool.database.connection() as conn:
        return UnreadPublic(unread=unread_count(conn, current.admin_id))


@router.post("/read-all", operation_id="read_all_notifications", response_model=UnreadPublic)
def read_all(*, current: CurrentAdmin, web: Web) -> UnreadPublic:
    """Mark every notification read (for this admin)."""
    with web.pool.database.connection() as conn:
        ids = unread_ids(conn, current.admin_id)
    return _mark(web, current, ids)


@router.post(
    "/{notification_id}/read", operation_id="read_notification", response_model=UnreadPublic
)
def read_one(*, notification_id: str, current: CurrentAdmin, web: Web) -> UnreadPublic:
    """Mark one notification read (for this admin)."""
    return _mark(web, current, [notification_id])
