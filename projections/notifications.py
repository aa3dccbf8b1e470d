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
    topics = (event_topic(AdminNotification, "Raised"), event_topic(AdminNotification, "Read"))
    schema = (
        """CREATE TABLE IF NOT EXISTS notifications_view (
            id uuid PRIMARY KEY,
            cause_event_id text NOT NULL,
            severity text NOT NULL,
            title text NOT NULL,
            body text NOT NULL,
            raised_at timestamptz NOT NULL,
            position bigint NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS notifications_view_time ON notifications_view (raised_at)",
        """CREATE TABLE IF NOT EXISTS notification_reads (
            notification_id uuid NOT NULL,
            admin_id text NOT NULL,
            PRIMARY KEY (notification_id, admin_id))""",
    )
    tables = ("notifications_view", "notification_reads")

    def apply(self, cur: psycopg.Cursor[Any], event: RecordedEvent) -> Iterable[ChangeNotice]:
        p = event.payload
        if event.event_type == "Read":
            cur.execute(
                "INSERT INTO notification_reads VALUES (%s, %s) ON CONFLICT DO NOTHING",
                (event.aggregate_id, p["admin_id"]),
            )
            return [ChangeNotice(self.name, str(event.aggregate_id), event.position)]
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


def list_notifications(conn: Any, admin_id: str, limit: int) -> list[dict[str, Any]]:
    return list(
        conn.execute(
            """SELECT n.id, n.severity, n.title, n.body, n.raised_at,
                 r.admin_id IS NOT NULL AS read FROM notifications_view n
               LEFT JOIN notification_reads r ON r.notification_id = n.id AND r.admin_id = %s
               ORDER BY n.raised_at DESC, n.position DESC LIMIT %s""",
            (admin_id, limit),
        ).fetchall()
    )


def unread_count(conn: Any, admin_id: str) -> int:
    row = conn.execute(
        """SELECT count(*) AS n FROM notifications_view n WHERE NOT EXISTS (
             SELECT 1 FROM notification_reads r
             WHERE r.notification_id = n.id AND r.admin_id = %s)""",
        (admin_id,),
    ).fetchone()
    return int(row["n"]) if row else 0


def unread_ids(conn: Any, admin_id: str) -> list[str]:
    rows = conn.execute(
        """SELECT id FROM notifications_view n WHERE NOT EXISTS (
             SELECT 1 FROM notification_reads r
             WHERE r.notification_id = n.id AND r.admin_id = %s)""",
        (admin_id,),
    ).fetchall()
    return [str(row["id"]) for row in rows]
