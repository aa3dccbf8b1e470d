"""The `workers` view: every worker of this pool, its profile and its last recorded status."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from domain.aggregate import event_topic
from domain.workers import Worker
from projections.framework import ChangeNotice, ReadModel, RecordedEvent

WORKER_EVENTS = (
    "Registered",
    "RegisteredAgain",
    "Edited",
    "Drained",
    "Undrained",
    "Removed",
    "StatusChanged",
)


class WorkersView(ReadModel):
    name = "workers"
    topics = tuple(event_topic(Worker, name) for name in WORKER_EVENTS)
    schema = (
        """CREATE TABLE IF NOT EXISTS workers_view (
            id uuid PRIMARY KEY,
            url text NOT NULL,
            name text NOT NULL,
            labels jsonb NOT NULL,
            capacity integer NOT NULL,
            status text NOT NULL,
            status_reason text NOT NULL,
            status_since timestamptz NOT NULL,
            drained boolean NOT NULL DEFAULT false,
            removed boolean NOT NULL DEFAULT false,
            registered_at timestamptz NOT NULL,
            position bigint NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS workers_view_live ON workers_view (removed, name)",
    )
    tables = ("workers_view",)

    def apply(self, cur: psycopg.Cursor[Any], event: RecordedEvent) -> Iterable[ChangeNotice]:
        at = event.meta.get("occurred_at")
        p = event.payload
        wid = event.aggregate_id
        match event.event_type:
            case "Registered":
                cur.execute(
                    """INSERT INTO workers_view (id, url, name, labels, capacity, status,
                         status_reason, status_since, registered_at, position)
                       VALUES (%s, %s, %s, %s, %s, 'unknown', 'not checked yet', %s, %s, %s)
                       ON CONFLICT (id) DO NOTHING""",
                    (
                        wid,
                        p["url"],
                        p["name"],
                        Jsonb(p["labels"]),
                        p["capacity"],
                        at,
                        at,
                        event.position,
                    ),
                )
            case "RegisteredAgain":
                self._update(
                    cur,
                    wid,
                    event.position,
                    name=p["name"],
                    labels=Jsonb(p["labels"]),
                    capacity=p["capacity"],
                    removed=False,
                    drained=False,
                    status="unknown",
                    status_reason="not checked yet",
                    status_since=at,
                )
            case "Edited":
                self._update(
                    cur,
                    wid,
                    event.position,
                    name=p["name"],
                    labels=Jsonb(p["labels"]),
                    capacity=p["capacity"],
                )
            case "Drained" | "Undrained":
                self._update(cur, wid, event.position, drained=event.event_type == "Drained")
            case "Removed":
                self._update(cur, wid, event.position, removed=True)
            case "StatusChanged":
                self._update(
                    cur,
                    wid,
                    event.position,
                    status=p["status"],
                    status_reason=p["reason"],
                    status_since=at,
                )
        return [ChangeNotice(self.name, str(wid), event.position)]

    @staticmethod
    def _update(cur: psycopg.Cursor[Any], worker_id: Any, position: int, **columns: Any) -> None:
        assignments = ", ".join(f"{column} = %s" for column in columns)
        cur.execute(
            f"UPDATE workers_view SET {assignments}, position = %s WHERE id = %s",
            (*columns.values(), position, worker_id),
        )


def list_workers(conn: Any, include_removed: bool = False) -> list[dict[str, Any]]:
    where = "" if include_removed else "WHERE NOT removed"
    return list(conn.execute(f"SELECT * FROM workers_view {where} ORDER BY name, url").fetchall())


def get_worker_row(conn: Any, worker_id: str) -> dict[str, Any] | None:
    row = conn.execute("SELECT * FROM workers_view WHERE id = %s", (worker_id,)).fetchone()
    return dict(row) if row else None
