"""The `settings` view: the current value of every flag that differs from its default."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from domain.aggregate import event_topic
from domain.settings import FlagSet
from projections.framework import ChangeNotice, ReadModel, RecordedEvent


class SettingsView(ReadModel):
    name = "settings"
    topics = (event_topic(FlagSet, "FlagChanged"),)
    schema = (
        """CREATE TABLE IF NOT EXISTS settings_view (
            key text PRIMARY KEY,
            value jsonb NOT NULL,
            scope text NOT NULL,
            changed_at timestamptz NOT NULL,
            changed_by text NOT NULL,
            reason text NOT NULL,
            position bigint NOT NULL)""",
    )
    tables = ("settings_view",)

    def apply(self, cur: psycopg.Cursor[Any], event: RecordedEvent) -> Iterable[ChangeNotice]:
        key = event.payload["key"]
        cur.execute(
            """INSERT INTO settings_view
                 (key, value, scope, changed_at, changed_by, reason, position)
               VALUES (%s, %s, %s, %s, %s, %s, %s)
               ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, scope = EXCLUDED.scope,
                 changed_at = EXCLUDED.changed_at, changed_by = EXCLUDED.changed_by,
                 reason = EXCLUDED.reason, position = EXCLUDED.position""",
            (
                key,
                Jsonb(event.payload["new_value"]),
                event.meta.get("scope", ""),
                event.meta.get("occurred_at"),
                event.meta.get("actor", ""),
                event.meta.get("reason", ""),
                event.position,
            ),
        )
        return [ChangeNotice(self.name, key, event.position)]


def read_settings_view(conn: Any) -> dict[str, dict[str, Any]]:
    rows = conn.execute("SELECT * FROM settings_view ORDER BY key").fetchall()
    return {row["key"]: row for row in rows}
