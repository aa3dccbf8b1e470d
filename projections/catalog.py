"""The `models` and `deployments` views: the catalog, and each model's state on each worker."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from domain.aggregate import event_topic
from domain.catalog import CatalogModel
from projections.framework import ChangeNotice, ReadModel, RecordedEvent

CATALOG_EVENTS = (
    "Added",
    "Updated",
    "Retired",
    "Assigned",
    "Unassigned",
    "Deployed",
    "DeployFailed",
)


class CatalogView(ReadModel):
    name = "catalog"
    topics = tuple(event_topic(CatalogModel, name) for name in CATALOG_EVENTS)
    schema = (
        """CREATE TABLE IF NOT EXISTS models_view (
            id uuid PRIMARY KEY,
            name text NOT NULL,
            tag text NOT NULL,
            digest text,
            size bigint NOT NULL,
            metadata jsonb NOT NULL,
            capabilities jsonb NOT NULL,
            notes text NOT NULL,
            source text NOT NULL,
            retired boolean NOT NULL DEFAULT false,
            added_at timestamptz NOT NULL,
            added_by text NOT NULL,
            position bigint NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS deployments_view (
            model_id uuid NOT NULL,
            worker_id uuid NOT NULL,
            state text NOT NULL,
            reason text NOT NULL DEFAULT '',
            attempts integer NOT NULL DEFAULT 0,
            updated_at timestamptz NOT NULL,
            PRIMARY KEY (model_id, worker_id))""",
    )
    tables = ("models_view", "deployments_view")

    def apply(self, cur: psycopg.Cursor[Any], event: RecordedEvent) -> Iterable[ChangeNotice]:
        p, mid, at = event.payload, event.aggregate_id, event.meta.get("occurred_at")
        match event.event_type:
            case "Added":
                cur.execute(
                    """INSERT INTO models_view (id, name, tag, digest, size, metadata,
                         capabilities, notes, source, added_at, added_by, position)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                       ON CONFLICT (id) DO NOTHING""",
                    (
                        mid,
                        p["name"],
                        p["tag"],
                        p["digest"],
                        p["size"],
                        Jsonb(p["metadata"]),
                        Jsonb(p["capabilities"]),
                        p["notes"],
                        p["source"],
                        at,
                        event.meta.get("actor", ""),
                        event.position,
                    ),
                )
            case "Updated":
                cur.execute(
                    "UPDATE models_view SET capabilities = %s, notes = %s, position = %s "
                    "WHERE id = %s",
                    (Jsonb(p["capabilities"]), p["notes"], event.position, mid),
                )
            case "Retired":
                cur.execute(
                    "UPDATE models_view SET retired = true, position = %s WHERE id = %s",
                    (event.position, mid),
                )
            case "Assigned":
                self._deployment(cur, mid, p["worker_id"], "assigned", "", at)
            case "Deployed":
                self._deployment(cur, mid, p["worker_id"], "deployed", "", at)
            case "DeployFailed":
                self._deployment(
                    cur, mid, p["worker_id"], "failed", p["reason"], at, attempts=p["attempt"]
                )
            case "Unassigned":
                cur.execute(
                    "DELETE FROM deployments_view WHERE model_id = %s AND worker_id = %s",
                    (mid, p["worker_id"]),
                )
        return [ChangeNotice(self.name, str(mid), event.position)]

    @staticmethod
    def _deployment(
        cur: psycopg.Cursor[Any],
        model_id: Any,
        worker_id: str,
        state: str,
        reason: str,
        at: Any,
        attempts: int | None = None,
    ) -> None:
        cur.execute(
            """INSERT INTO deployments_view (model_id, worker_id, state, reason, attempts,
                 updated_at) VALUES (%s, %s, %s, %s, %s, %s)
               ON CONFLICT (model_id, worker_id) DO UPDATE SET state = EXCLUDED.state,
                 reason = EXCLUDED.reason, updated_at = EXCLUDED.updated_at,
                 attempts = CASE WHEN %s::int IS NULL THEN deployments_view.attempts
                                 ELSE EXCLUDED.attempts END""",
            (model_id, worker_id, state, reason, attempts or 0, at, attempts),
        )


def list_models(conn: Any, include_retired: bool = False) -> list[dict[str, Any]]:
    where = "" if include_retired else "WHERE NOT retired"
    return list(conn.execute(f"SELECT * FROM models_view {where} ORDER BY name, tag").fetchall())


def list_deployments(conn: Any, model_id: str | None = None) -> list[dict[str, Any]]:
    if model_id is None:
        return list(conn.execute("SELECT * FROM deployments_view").fetchall())
    return list(
        conn.execute("SELECT * FROM deployments_view WHERE model_id = %s", (model_id,)).fetchall()
    )
