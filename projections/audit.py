"""The `audit` view: every event with its metadata, searchable by time, actor, type, correlation."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from projections.framework import ChangeNotice, ReadModel, RecordedEvent


class AuditView(ReadModel):
    name = "audit"
    schema = (
        """CREATE TABLE IF NOT EXISTS audit_log (
            position bigint PRIMARY KEY,
            event_id text,
            occurred_at timestamptz NOT NULL,
            event_type text NOT NULL,
            aggregate_type text NOT NULL,
            aggregate_id uuid NOT NULL,
            aggregate_version integer NOT NULL,
            actor text NOT NULL,
            reason text NOT NULL,
            correlation_id text,
            causation_id text,
            origin_pool text,
            scope text,
            meta jsonb NOT NULL,
            payload jsonb NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS audit_log_time ON audit_log (occurred_at)",
        "CREATE INDEX IF NOT EXISTS audit_log_actor ON audit_log (actor, occurred_at)",
        "CREATE INDEX IF NOT EXISTS audit_log_type ON audit_log (event_type, occurred_at)",
        "CREATE INDEX IF NOT EXISTS audit_log_correlation ON audit_log (correlation_id)",
    )
    tables = ("audit_log",)

    def apply(self, cur: psycopg.Cursor[Any], event: RecordedEvent) -> Iterable[ChangeNotice]:
        meta = event.meta
        cur.execute(
            """INSERT INTO audit_log (position, event_id, occurred_at, event_type, aggregate_type,
                 aggregate_id, aggregate_version, actor, reason, correlation_id, causation_id,
                 origin_pool, scope, meta, payload)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            (
                event.position,
                meta.get("event_id"),
                meta.get("occurred_at"),
                event.event_type,
                event.aggregate_type,
                event.aggregate_id,
                event.aggregate_version,
                meta.get("actor", "unknown"),
                meta.get("reason", ""),
                meta.get("correlation_id"),
                meta.get("causation_id"),
                meta.get("origin_pool"),
                meta.get("scope"),
                Jsonb(meta),
                Jsonb(event.payload),
            ),
        )
        return [ChangeNotice(self.name, str(event.position), event.position)]


@dataclass(frozen=True)
class AuditEntry:
    position: int
    event_id: str | None
    occurred_at: datetime
    event_type: str
    aggregate_type: str
    aggregate_id: str
    actor: str
    reason: str
    correlation_id: str | None
    causation_id: str | None
    origin_pool: str | None
    scope: str | None
    payload: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "event_id": self.event_id,
            "occurred_at": self.occurred_at.isoformat(),
            "event_type": self.event_type,
            "aggregate_type": self.aggregate_type,
            "aggregate_id": self.aggregate_id,
            "actor": self.actor,
            "reason": self.reason,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "origin_pool": self.origin_pool,
            "scope": self.scope,
            "payload": self.payload,
        }


def query_audit(
    conn: Any,
    *,
    limit: int = 50,
    after: int | None = None,
    actor: str | None = None,
    event_type: str | None = None,
    correlation_id: str | None = None,
    newest_first: bool = True,
    since: datetime | None = None,
    until: datetime | None = None,
    before: int | None = None,
    aggregate_id: str | None = None,
) -> list[AuditEntry]:
    clauses: list[str] = []
    params: list[object] = []
    for column, value in (
        ("actor", actor),
        ("event_type", event_type),
        ("correlation_id", correlation_id),
        ("aggregate_id", aggregate_id),
    ):
        if value:
            clauses.append(f"{column} = %s")
            params.append(value)
    for clause, bound in (
        ("position > %s", after),
        ("position < %s", before),
        ("occurred_at >= %s", since),
        ("occurred_at < %s", until),
    ):
        if bound is not None:
            clauses.append(clause)
            params.append(bound)
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    order = "DESC" if newest_first else "ASC"
    rows = conn.execute(
        f"""SELECT position, event_id, occurred_at, event_type, aggregate_type,
                   aggregate_id::text, actor, reason, correlation_id, causation_id,
                   origin_pool, scope, payload
            FROM audit_log {where} ORDER BY position {order} LIMIT %s""",
        [*params, limit],
    ).fetchall()
    return [AuditEntry(**row) for row in rows]
