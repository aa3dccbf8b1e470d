"""Live change notices for admin UIs: Redis pub/sub in, one SSE stream per browser tab out.

Each web process subscribes once to the notice and session channels and fans messages out
to its connected clients. Event ids are event-store positions: a client that reconnects with
`Last-Event-ID` is replayed what it missed from `change_notices`, or told to `resync` when
that is older than what is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from infrastructure.database import Database
from infrastructure.sessions import SESSIONS_CHANNEL, session_hash
from projections.framework import NOTICE_CHANNEL

log = logging.getLogger(__name__)

QUEUE_LIMIT = 2000
REPLAY_LIMIT = 5000


@dataclass(eq=False)
class StreamClient:
    admin_id: str
    session_hash: str
    queue: asyncio.Queue[list[dict[str, Any]] | None] = field(
        default_factory=lambda: asyncio.Queue(QUEUE_LIMIT)
    )
    ended: bool = False
    overflowed: bool = False

    def offer(self, notices: list[dict[str, Any]]) -> None:
        try:
            self.queue.put_nowait(notices)
        except asyncio.QueueFull:
            self.overflowed = True  # too slow to keep up: it will be told to resync

    def end(self) -> None:
        self.ended = True
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)


class NoticeHub:
    def __init__(self, redis_url: str, database: Database) -> None:
        self._redis_url = redis_url
        self._db = database
        self.clients: set[StreamClient] = set()
        self._task: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="notice-hub")

    async def stop(self) -> None:
        for client in list(self.clients):
            client.end()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def register(self, admin_id: str, session_id: str) -> StreamClient:
        client = StreamClient(admin_id=admin_id, session_hash=session_hash(session_id))
        self.clients.add(client)
        return client

    def unregister(self, client: StreamClient) -> None:
        self.clients.discard(client)

    async def _listen(self) -> None:
        backoff = 0.5
        while True:
            connection = aioredis.Redis.from_url(self._redis_url)
            try:
                pubsub = connection.pubsub()
                await pubsub.subscribe(NOTICE_CHANNEL, SESSIONS_CHANNEL)
                self.subscribed.set()
                backoff = 0.5
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self.dispatch(message["channel"], message["data"])
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("notice hub lost Redis; reconnecting", exc_info=True)
                self.subscribed.clear()
                # Whatever was published meanwhile is lost for live clients: resync them.
                for client in list(self.clients):
                    client.overflowed = True
                    client.offer([])
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10)
            finally:
                with contextlib.suppress(Exception):
                    await connection.aclose()

    def dispatch(self, channel: bytes | str, data: bytes | str) -> None:
        name = channel.decode() if isinstance(channel, bytes) else channel
        payload = json.loads(data)
        if name == NOTICE_CHANNEL:
            for client in list(self.clients):
                client.offer(payload)
        elif name == SESSIONS_CHANNEL:
            ended = set(payload.get("sessions", []))
            admin_id = payload.get("admin_id")
            for client in list(self.clients):
                if client.session_hash in ended or client.admin_id == admin_id:
                    client.end()

    # --- resume ---------------------------------------------------------------------------

    def missed_since(self, last_position: int) -> list[dict[str, Any]] | None:
        """Notices after `last_position`, or None when some of them are no longer kept."""
        with self._db.connection() as conn:
            oldest = conn.execute("SELECT min(position) AS p FROM change_notices").fetchone()
            head = conn.execute(
                "SELECT coalesce(max(position), 0) AS p FROM projection_positions"
            ).fetchone()
            oldest_kept = oldest["p"] if oldest else None
            if last_position > int(head["p"] if head else 0):
                return None  # from another database, or one restored from a backup
            if oldest_kept is None:
                return [] if last_position >= int(head["p"] if head else 0) else None
            if oldest_kept > last_position + 1:
                return None
            rows = conn.execute(
                """SELECT position, view, key FROM change_notices WHERE position >= %s
                   ORDER BY position LIMIT %s""",
                (last_position, REPLAY_LIMIT + 1),
            ).fetchall()
        if len(rows) > REPLAY_LIMIT:
            return None
        return [dict(row) for row in rows]


def sse_change(notices: list[dict[str, Any]]) -> dict[str, str]:
    return {
        "event": "change",
        "id": str(max(n["position"] for n in notices)),
        "data": json.dumps(notices),
    }


async def stream_events(
    hub: NoticeHub,
    client: StreamClient,
    last_event_id: int | None,
    head: int,
    still_valid: Any,
) -> AsyncIterator[dict[str, str]]:
    """The SSE events of one client, until it leaves or its session ends."""
    try:
        if last_event_id is None:
            yield {"event": "ready", "id": str(head), "data": json.dumps({"position": head})}
        else:
            missed = await asyncio.to_thread(hub.missed_since, last_event_id)
            if missed is None:
                yield {
                    "event": "resync",
                    "id": str(head),
                    "data": json.dumps({"position": head, "reason": "missed too much"}),
                }
            elif missed:
                yield sse_change(missed)
        checked = asyncio.get_running_loop().time()
        while not client.ended:
            try:
                notices = await asyncio.wait_for(client.queue.get(), timeout=5.0)
            except TimeoutError:
                notices = []
            if client.ended or notices is None:
                break
            # Whatever else is already queued goes in the same SSE event: one write per
            # client per burst, not one per projection's notice.
            while notices and not client.queue.empty():
                more = client.queue.get_nowait()
                if more is None:
                    client.ended = True
                    break
                notices = notices + more
            if client.overflowed:
                client.overflowed = False
                while not client.queue.empty():
                    client.queue.get_nowait()
                yield {"event": "resync", "data": json.dumps({"reason": "fell behind"})}
                continue
            if notices:
                yield sse_change(notices)
            now = asyncio.get_running_loop().time()
            if now - checked > 30:  # in case a session-ended message was lost
                checked = now
                if not await asyncio.to_thread(still_valid):
                    break
        yield {"event": "session_ended", "data": json.dumps({"reason": "logged out"})}
    finally:
        hub.unregister(client)
