"""The `admins` view: every admin account, its status and last login (fields stay sealed)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from domain.admins import Admin
from domain.aggregate import event_topic
from projections.framework import ChangeNotice, ReadModel, RecordedEvent

_STATUS_BY_EVENT = {"Disabled": "disabled", "Enabled": "active"}


class AdminsView(ReadModel):
    name = "admins"
    topics = tuple(
        event_topic(Admin, name)
        for name in ("Registered", "Disabled", "Enabled", "LoggedIn", "PasswordChanged")
    )
    schema = (
        """CREATE TABLE IF NOT EXISTS admins_view (
            id uuid PRIMARY KEY,
            email jsonb NOT NULL,
            display_name jsonb NOT NULL,
            status text NOT NULL,
            created_at timestamptz NOT NULL,
            created_by text NOT NULL,
            last_login_at timestamptz,
            password_changed_at timestamptz,
            position bigint NOT NULL)""",
    )
    tables = ("admins_view",)

    def apply(self, cur: psycopg.Cursor[Any], event: RecordedEvent) -> Iterable[ChangeNotice]:
        at = event.meta.get("occurred_at")
        kind = event.event_type
        if kind == "Registered":
            # Sealed fields as stored: {"sealed_for": subject}; the API reveals them from the
            # aggregate, so an erased admin shows as erased without touching this row.
            cur.execute(
                """INSERT INTO admins_view
                     (id, email, display_name, status, created_at, created_by, position)
                   VALUES (%s, %s, %s, 'active', %s, %s, %s) ON CONFLICT (id) DO NOTHING""",
                (
                    event.aggregate_id,
                    Jsonb(event.payload["email"]),
                    Jsonb(event.payload["display_name"]),
                    at,
                    event.meta.get("actor", ""),
                    event.position,
                ),
            )
        elif kind in _STATUS_BY_EVENT:
            cur.execute(
                "UPDATE admins_view SET status = %s, position = %s WHERE id = %s",
                (_STATUS_BY_EVENT[kind], event.position, event.aggregate_id),
            )
        elif kind == "LoggedIn":
            cur.execute(
                "UPDATE admins_view SET last_login_at = %s, position = %s WHERE id = %s",
                (at, event.position, event.aggregate_id),
            )
        elif kind == "PasswordChanged":
            cur.execute(
                "UPDATE admins_view SET password_changed_at = %s, position = %s WHERE id = %s",
                (at, event.position, event.aggregate_id),
            )
        return [ChangeNotice(self.name, str(event.aggregate_id), event.position)]


def list_admin_rows(conn: Any) -> list[dict[str, Any]]:
    return list(conn.execute("SELECT * FROM admins_view ORDER BY created_at").fetchall())


def count_active_admins(conn: Any) -> int:
    row = conn.execute("SELECT count(*) AS n FROM admins_view WHERE status = 'active'").fetchone()
    return int(row["n"]) if row else 0
