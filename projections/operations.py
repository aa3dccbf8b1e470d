"""The `operations` view: incidents with their timelines, migrations with their steps, mail.

One read model for the three (one runner, one pass over the log) since they are read together
on the Incidents & Migrations and SMTP pages; change notices name each one's view.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from domain.aggregate import event_topic
from domain.incidents import Incident
from domain.mail import OutgoingMail
from domain.migrations import Migration, MigrationKind, steps_of
from projections.framework import ChangeNotice, ReadModel, RecordedEvent

INCIDENT_EVENTS = (
    "Opened",
    "Recurred",
    "Acknowledged",
    "Assigned",
    "Commented",
    "Escalated",
    "Resolved",
)
MIGRATION_EVENTS = (
    "Created",
    "Approved",
    "Rejected",
    "Cancelled",
    "Started",
    "StepDone",
    "StepFailed",
    "RolledBack",
    "Completed",
)
MAIL_EVENTS = ("Queued", "AttemptFailed", "Sent", "GaveUp", "Retried")

# What each incident event shows on the timeline.
TIMELINE_KIND = {
    "Opened": "opened",
    "Recurred": "recurred",
    "Acknowledged": "acknowledged",
    "Assigned": "assigned",
    "Commented": "commented",
    "Escalated": "escalated",
    "Resolved": "resolved",
}


class OperationsView(ReadModel):
    name = "operations"
    topics = (
        *(event_topic(Incident, e) for e in INCIDENT_EVENTS),
        *(event_topic(Migration, e) for e in MIGRATION_EVENTS),
        *(event_topic(OutgoingMail, e) for e in MAIL_EVENTS),
    )
    schema = (
        """CREATE TABLE IF NOT EXISTS incidents_view (
            id uuid PRIMARY KEY,
            cause text NOT NULL,
            kind text NOT NULL,
            severity text NOT NULL,
            title text NOT NULL,
            detail text NOT NULL,
            subject text NOT NULL,
            status text NOT NULL,
            occurrences integer NOT NULL,
            opened_at timestamptz NOT NULL,
            opened_by text NOT NULL,
            last_seen_at timestamptz NOT NULL,
            acknowledged_at timestamptz,
            acknowledged_by text,
            assignee_id text,
            escalated_at timestamptz,
            resolved_at timestamptz,
            resolution text,
            position bigint NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS incidents_view_status ON incidents_view (status, last_seen_at)",
        """CREATE TABLE IF NOT EXISTS incident_timeline (
            incident_id uuid NOT NULL,
            position bigint NOT NULL,
            at timestamptz NOT NULL,
            kind text NOT NULL,
            actor text NOT NULL,
            text text NOT NULL,
            PRIMARY KEY (incident_id, position))""",
        """CREATE TABLE IF NOT EXISTS migrations_view (
            id uuid PRIMARY KEY,
            kind text NOT NULL,
            model_id uuid NOT NULL,
            source_id uuid,
            target_id uuid NOT NULL,
            status text NOT NULL,
            created_by text NOT NULL,
            reason text NOT NULL,
            not_before timestamptz,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            steps jsonb NOT NULL,
            error text,
            incident_id uuid,
            position bigint NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS migrations_view_status ON migrations_view (status)",
        """CREATE TABLE IF NOT EXISTS mail_view (
            id uuid PRIMARY KEY,
            to_address text NOT NULL,
            subject text NOT NULL,
            kind text NOT NULL,
            status text NOT NULL,
            attempts integer NOT NULL DEFAULT 0,
            last_error text,
            answer text,
            queued_at timestamptz NOT NULL,
            sent_at timestamptz,
            position bigint NOT NULL)""",
    )
    tables = ("incidents_view", "incident_timeline", "migrations_view", "mail_view")

    def apply(self, cur: psycopg.Cursor[Any], event: RecordedEvent) -> Iterable[ChangeNotice]:
        kind = event.aggregate_type.rsplit(".", 1)[-1]
        if kind == "Incident":
            self._incident(cur, event)
            return [ChangeNotice("incidents", str(event.aggregate_id), event.position)]
        if kind == "Migration":
            self._migration(cur, event)
            return [ChangeNotice("migrations", str(event.aggregate_id), event.position)]
        self._mail(cur, event)
        return [ChangeNotice("mail", str(event.aggregate_id), event.position)]

    def _incident(self, cur: psycopg.Cursor[Any], event: RecordedEvent) -> None:
        p, iid, at = event.payload, event.aggregate_id, event.meta.get("occurred_at")
        actor = str(event.meta.get("actor", ""))
        reason = str(event.meta.get("reason") or "")
        text = reason
        match event.event_type:
            case "Opened":
                cur.execute(
                    """INSERT INTO incidents_view (id, cause, kind, severity, title, detail,
                         subject, status, occurrences, opened_at, opened_by, last_seen_at,
                         position)
                       VALUES (%s, %s, %s, %s, %s, %s, %s, 'open', 1, %s, %s, %s, %s)
                       ON CONFLICT (id) DO NOTHING""",
                    (
                        iid,
                        p["cause"],
                        p["kind"],
                        p["severity"],
                        p["title"],
                        p["detail"],
                        p["subject"],
                        at,
                        actor,
                        at,
                        event.position,
                    ),
                )
                text = p["detail"] or p["title"]
            case "Recurred":
                self._set(
                    cur,
                    iid,
                    event,
                    "occurrences = occurrences + 1, detail = %s, last_seen_at = %s",
                    p["detail"],
                    at,
                )
                text = p["detail"]
            case "Acknowledged":
                self._set(
                    cur,
                    iid,
                    event,
                    "status = 'acknowledged', acknowledged_at = %s, acknowledged_by = %s",
                    at,
                    actor,
                )
            case "Assigned":
                self._set(cur, iid, event, "assignee_id = %s", p["admin_id"])
                text = f"admin:{p['admin_id']}" + (f" - {reason}" if reason else "")
            case "Commented":
                self._set(cur, iid, event, "last_seen_at = last_seen_at")
                text = p["text"]
            case "Escalated":
                self._set(cur, iid, event, "escalated_at = %s", at)
                sent_to = ", ".join(p["recipients"]) or "nobody (no escalation recipient)"
                text = f"{reason}; e-mailed {sent_to}"
            case "Resolved":
                self._set(
                    cur,
                    iid,
                    event,
                    "status = 'resolved', resolved_at = %s, resolution = %s",
                    at,
                    p["resolution"],
                )
                text = p["resolution"]
        cur.execute(
            """INSERT INTO incident_timeline (incident_id, position, at, kind, actor, text)
               VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING""",
            (iid, event.position, at, TIMELINE_KIND[event.event_type], actor, text),
        )

    @staticmethod
    def _set(
        cur: psycopg.Cursor[Any], iid: Any, event: RecordedEvent, assignments: str, *values: Any
    ) -> None:
        cur.execute(
            f"UPDATE incidents_view SET {assignments}, position = %s WHERE id = %s",
            (*values, event.position, iid),
        )

    def _migration(self, cur: psycopg.Cursor[Any], event: RecordedEvent) -> None:
        p, mid, at = event.payload, event.aggregate_id, event.meta.get("occurred_at")
        if event.event_type == "Created":
            steps = [
                {"name": s.value, "status": "pending", "detail": "", "at": None}
                for s in steps_of(MigrationKind(p["kind"]))
            ]
            cur.execute(
                """INSERT INTO migrations_view (id, kind, model_id, source_id, target_id,
                     status, created_by, reason, not_before, created_at, updated_at, steps,
                     incident_id, position)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (id) DO NOTHING""",
                (
                    mid,
                    p["kind"],
                    p["model_id"],
                    p["source_id"],
                    p["target_id"],
                    "proposed" if p["proposed"] else "pending",
                    event.meta.get("actor", ""),
                    event.meta.get("reason") or "",
                    p["not_before"],
                    at,
                    at,
                    Jsonb(steps),
                    p["incident_id"],
                    event.position,
                ),
            )
            return
        row = cur.execute("SELECT steps FROM migrations_view WHERE id = %s", (mid,)).fetchone()
        if row is None:
            return
        steps = row["steps"]
        status: str | None = None
        error: str | None = None

        def mark(name: str, state: str, detail: str) -> None:
            for step in steps:
                if step["name"] == name:
                    step.update(status=state, detail=detail, at=at)

        match event.event_type:
            case "Approved":
                status = "pending"
            case "Rejected" | "Cancelled" | "Completed":
                status = event.event_type.lower()
            case "Started":
                status = "running"
                mark(steps[0]["name"], "running", "")
            case "StepDone":
                mark(p["step"], "skipped" if p["skipped"] else "done", p["detail"])
                following = [s for s in steps if s["status"] == "pending"]
                if following:
                    following[0]["status"] = "running"
            case "StepFailed":
                mark(p["step"], "failed", p["error"])
                error = f"{p['step']}: {p['error']}"
            case "RolledBack":
                status = "rolled_back"
                for step in steps:
                    if step["status"] == "done":
                        step["status"] = "rolled_back"
                error = None
        cur.execute(
            """UPDATE migrations_view SET status = coalesce(%s, status), steps = %s,
                 error = coalesce(%s, error), updated_at = %s,
                 incident_id = coalesce(%s, incident_id), position = %s WHERE id = %s""",
            (status, Jsonb(steps), error, at, p.get("incident_id"), event.position, mid),
        )

    def _mail(self, cur: psycopg.Cursor[Any], event: RecordedEvent) -> None:
        p, mid, at = event.payload, event.aggregate_id, event.meta.get("occurred_at")
        values: tuple[Any, ...]
        match event.event_type:
            case "Queued":
                cur.execute(
                    """INSERT INTO mail_view (id, to_address, subject, kind, status, queued_at,
                         position) VALUES (%s, %s, %s, %s, 'queued', %s, %s)
                       ON CONFLICT (id) DO NOTHING""",
                    (mid, p["to"], p["subject"], p["kind"], at, event.position),
                )
                return
            case "AttemptFailed":
                change, values = (
                    "status = 'retrying', attempts = %s, last_error = %s",
                    (p["attempt"], p["error"]),
                )
            case "Sent":
                change, values = (
                    "status = 'sent', attempts = %s, answer = %s, sent_at = %s",
                    (p["attempt"], p["answer"], at),
                )
            case "GaveUp":
                change, values = ("status = 'failed', last_error = %s", (p["error"],))
            case _:  # Retried
                change, values = ("status = 'queued', attempts = 0", ())
        cur.execute(
            f"UPDATE mail_view SET {change}, position = %s WHERE id = %s",
            (*values, event.position, mid),
        )


def list_incidents(
    conn: Any, status: str | None, kind: str | None, severity: str | None, limit: int
) -> list[dict[str, Any]]:
    where, args = [], []
    if status == "active":
        where.append("status <> 'resolved'")
    elif status:
        where.append("status = %s")
        args.append(status)
    for column, value in (("kind", kind), ("severity", severity)):
        if value:
            where.append(f"{column} = %s")
            args.append(value)
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    return list(
        conn.execute(
            f"""SELECT * FROM incidents_view {clause}
                ORDER BY (status = 'resolved'), last_seen_at DESC LIMIT %s""",
            (*args, limit),
        ).fetchall()
    )


def incident_counts(conn: Any) -> dict[str, int]:
    rows = conn.execute("SELECT status, count(*) AS n FROM incidents_view GROUP BY status")
    counts = {"open": 0, "acknowledged": 0, "resolved": 0}
    counts.update({row["status"]: int(row["n"]) for row in rows.fetchall()})
    return counts


def incident_timeline(conn: Any, incident_id: str) -> list[dict[str, Any]]:
    return list(
        conn.execute(
            "SELECT * FROM incident_timeline WHERE incident_id = %s ORDER BY position",
            (incident_id,),
        ).fetchall()
    )


def overdue_incidents(conn: Any, delay_seconds: int) -> list[str]:
    rows = conn.execute(
        """SELECT id FROM incidents_view WHERE status = 'open' AND escalated_at IS NULL
             AND opened_at < now() - make_interval(secs => %s) ORDER BY opened_at LIMIT 100""",
        (delay_seconds,),
    ).fetchall()
    return [str(row["id"]) for row in rows]


def list_migrations(conn: Any, status: str | None, limit: int = 200) -> list[dict[str, Any]]:
    clause, args = ("WHERE status = %s", [status]) if status else ("", [])
    return list(
        conn.execute(
            f"SELECT * FROM migrations_view {clause} ORDER BY created_at DESC LIMIT %s",
            (*args, limit),
        ).fetchall()
    )


def migrations_in_flight(conn: Any) -> dict[str, set[str]]:
    """Model id -> targets of its unfinished migrations."""
    rows = conn.execute(
        "SELECT model_id, target_id FROM migrations_view "
        "WHERE status IN ('proposed', 'pending', 'running')"
    ).fetchall()
    found: dict[str, set[str]] = {}
    for row in rows:
        found.setdefault(str(row["model_id"]), set()).add(str(row["target_id"]))
    return found


def due_migrations(conn: Any) -> list[str]:
    rows = conn.execute(
        "SELECT id FROM migrations_view WHERE status = 'pending' "
        "AND (not_before IS NULL OR not_before <= now()) ORDER BY created_at"
    ).fetchall()
    return [str(row["id"]) for row in rows]


def list_mail(conn: Any, limit: int) -> list[dict[str, Any]]:
    return list(conn.execute("SELECT * FROM mail_view ORDER BY queued_at DESC LIMIT %s", (limit,)))
