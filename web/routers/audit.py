"""The audit trail: who did what, why, when and from which pool."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query

from projections.audit import query_audit
from web.deps import CurrentAdmin, Web
from web.schemas import AuditEntryPublic, AuditPagePublic

router = APIRouter(prefix="/api/audit", tags=["audit"])


@router.get("", operation_id="list_audit", response_model=AuditPagePublic)
def list_audit(
    *,
    current: CurrentAdmin,
    web: Web,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    event_type: Annotated[str | None, Query(max_length=200)] = None,
    correlation_id: Annotated[str | None, Query(max_length=200)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: Annotated[
        int | None, Query(ge=1, description="next_cursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AuditPagePublic:
    """Newest first, filtered, one page at a time."""
    with web.pool.database.connection() as conn:
        entries = query_audit(
            conn,
            limit=limit + 1,
            actor=actor,
            event_type=event_type,
            correlation_id=correlation_id,
            since=since,
            until=until,
            before=cursor,
        )
    page = entries[:limit]
    return AuditPagePublic(
        items=[AuditEntryPublic(**entry.as_json()) for entry in page],
        next_cursor=page[-1].position if len(entries) > limit else None,
    )
