"""The `notifications` view: admin notifications, newest first."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg

from domain.aggregate import event_topic
from domain.notifications import AdminNotification
from projections.framework import ChangeNotice, ReadModel, RecordedEvent


class NotificationsView(ReadModel):
    name = "notifications"
    topics = (event_topic(AdminNotification, "Raised"),)
    schema = (
        """CREATE TABLE IF NOT EXISTS notifications_view (
            id uuid PRIMARY KEY,
            cause_event_id text NOT NULL,
            severity text NOT NULL,
            title text NOT NULL,
            body text NOT NULL,
            raised_at timestamptz NOT NULL,
            read boolean NOT NULL DEFAULT false,
            position bigint NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS notifications_view_time ON notifications_view (raised_at)",
    )
    tables = ("notifications_view",)

    def apply(self, cur: psycopg.Cursor[Any], event: RecordedEvent) -> Iterable[ChangeNotice]:
        p = event.payload
        cur.execute(
            """INSERT INTO notifications_view
                 (id, cause_event_id, severity, title, body, raised_at, position)
               VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO NOTHING""",
            (
                event.aggregate_id,
                p["cause_event_id"],
                p["severity"],
                p["title"],
                p["body"],
                event.meta.get("occurred_at"),
                event.position,
            ),
        )
        return [ChangeNotice(self.name, str(event.aggregate_id), event.position)]
