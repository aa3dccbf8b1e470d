"""The outbox dispatcher: one row, and so one background message, per event that needs work.

The row commits with the projection position (so exactly one per event id); the message is
sent after commit and the row marked sent. A crash in between leaves the row unsent, and the
relay sends it again later: delivery is at least once, and actors are idempotent by event id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from application.automations import ROUTES, routes_for
from projections.framework import ChangeNotice, ReadModel, RecordedEvent

OUTBOX_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS outbox (
        event_id text NOT NULL,
        actor text NOT NULL,
        position bigint NOT NULL,
        message jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        sent_at timestamptz,
        attempts integer NOT NULL DEFAULT 0,
        PRIMARY KEY (event_id, actor))""",
    "CREATE INDEX IF NOT EXISTS outbox_unsent ON outbox (position) WHERE sent_at IS NULL",
)


class OutboxView(ReadModel):
    name = "outbox"
    topics = tuple(dict.fromkeys(route.topic for route in ROUTES))
    schema = OUTBOX_SCHEMA
    tables = ()  # a rebuild must not send everything again: rows are kept

    def __init__(self, relay: Callable[[], int] | None = None) -> None:
        self._relay = relay

    def apply(self, cur: psycopg.Cursor[Any], event: RecordedEvent) -> Iterable[ChangeNotice]:
        event_id = event.meta.get("event_id") or f"position:{event.position}"
        for route in routes_for(event.topic):
            cur.execute(
                """INSERT INTO outbox (event_id, actor, position, message)
                   VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING""",
                (
                    event_id,
                    route.actor,
                    event.position,
                    Jsonb(
                        {
                            "event_id": event_id,
                            "aggregate_id": str(event.aggregate_id),
                            "payload": event.payload,
                            "meta": event.meta,
                        }
                    ),
                ),
            )
        return ()

    def after_commit(self, events: Sequence[RecordedEvent]) -> None:
        if self._relay is not None:
            self._relay()
