"""`/api/stream`: the live change notices of this admin's session, as Server-Sent Events."""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Header, Request
from sse_starlette import EventSourceResponse

from application.admins import NotAuthenticated
from web.deps import CurrentAdmin, Web
from web.stream import stream_events

router = APIRouter(prefix="/api/stream", tags=["stream"])
HEARTBEAT_SECONDS = 15


@router.get(
    "",
    operation_id="stream_changes",
    response_class=EventSourceResponse,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "Events: ready, change, resync, session_ended",
        }
    },
)
async def stream(
    *,
    request: Request,
    current: CurrentAdmin,
    web: Web,
    last_event_id: Annotated[str | None, Header()] = None,
) -> EventSourceResponse:
    """Change notices `{view, key, position}`; ids are event positions (resume with
    Last-Event-ID)."""
    last: int | None = None
    if last_event_id is not None and last_event_id.strip().isdigit():
        last = int(last_event_id)
    newest = await asyncio.to_thread(web.pool.store.recorder.max_notification_id)
    head = int(newest or 0)
    client = web.hub.register(current.admin_id, current.session_id)

    def still_valid() -> bool:
        try:
            web.pool.admins.authenticate(current.session_id)
        except NotAuthenticated:
            return False
        return True

    return EventSourceResponse(
        stream_events(web.hub, client, last, head, still_valid),
        ping=HEARTBEAT_SECONDS,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
