"""Incidents: the journal, each incident's timeline, and what admins do about them."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fastapi import APIRouter, Query, status

from domain.errors import ConcurrencyConflict
from domain.notifications import Severity
from projections.operations import incident_counts, incident_timeline, list_incidents
from web.deps import CurrentAdmin, Web
from web.schemas import (
    IncidentAssignment,
    IncidentComment,
    IncidentCounts,
    IncidentCreate,
    IncidentDetailPublic,
    IncidentPublic,
    IncidentResolution,
    IncidentsPublic,
    Noted,
    TimelineEntryPublic,
)

router = APIRouter(prefix="/api/incidents", tags=["incidents"])


def admin_namer(web: Web) -> Any:
    """`admin:<id>` -> the admin's display name (None for other actors or unknown admins)."""

    @lru_cache(maxsize=64)
    def name(actor: str | None) -> str | None:
        if not actor or not actor.startswith("admin:"):
            return None
        try:
            admin = web.pool.admins.get(actor.removeprefix("admin:"))
        except Exception:
            return None
        return web.pool.admins.profile(admin).display_name

    return name


def incident_public(row: dict[str, Any], name: Any) -> IncidentPublic:
    assignee = row["assignee_id"]
    return IncidentPublic(
        id=str(row["id"]),
        kind=row["kind"],
        severity=row["severity"],
        title=row["title"],
        detail=row["detail"],
        subject=row["subject"],
        status=row["status"],
        occurrences=row["occurrences"],
        opened_at=row["opened_at"],
        last_seen_at=row["last_seen_at"],
        opened_by=row["opened_by"],
        acknowledged_at=row["acknowledged_at"],
        acknowledged_by=name(row["acknowledged_by"]) or row["acknowledged_by"],
        assignee_id=assignee,
        assignee_name=name(f"admin:{assignee}") if assignee else None,
        escalated_at=row["escalated_at"],
        resolved_at=row["resolved_at"],
        resolution=row["resolution"],
    )


def _detail(web: Web, incident_id: str) -> IncidentDetailPublic:
    web.pool.incidents.get(incident_id)  # 404 for an unknown id
    web.pool.runner("operations").catch_up()  # read your own writes
    name = admin_namer(web)
    with web.pool.database.connection() as conn:
        row = conn.execute("SELECT * FROM incidents_view WHERE id = %s", (incident_id,)).fetchone()
        entries = incident_timeline(conn, incident_id)
    assert row is not None
    timeline = []
    for entry in entries:
        text = entry["text"]
        if entry["kind"] == "assigned":
            target, _, rest = text.partition(" - ")
            text = f"assigned to {name(target) or target}" + (f" - {rest}" if rest else "")
        timeline.append(
            TimelineEntryPublic(
                at=entry["at"],
                kind=entry["kind"],
                actor=entry["actor"],
                actor_name=name(entry["actor"]),
                text=text,
            )
        )
    return IncidentDetailPublic(**incident_public(row, name).model_dump(), timeline=timeline)


@router.get("", operation_id="list_incidents", response_model=IncidentsPublic)
def list_all(
    *,
    current: CurrentAdmin,
    web: Web,
    status_filter: str | None = Query(
        default=None, alias="status", pattern="^(active|open|acknowledged|resolved)$"
    ),
    kind: str | None = Query(default=None, max_length=40),
    severity: str | None = Query(default=None, pattern="^(info|warning|critical)$"),
    limit: int = Query(default=200, ge=1, le=1000),
) -> IncidentsPublic:
    """The incident journal: active incidents first, newest activity first."""
    name = admin_namer(web)
    with web.pool.database.connection() as conn:
        rows = list_incidents(conn, status_filter, kind, severity, limit)
        counts = incident_counts(conn)
    return IncidentsPublic(
        items=[incident_public(row, name) for row in rows], counts=IncidentCounts(**counts)
    )


@router.post(
    "",
    operation_id="open_incident",
    response_model=IncidentDetailPublic,
    status_code=status.HTTP_201_CREATED,
)
def open_incident(*, body: IncidentCreate, current: CurrentAdmin, web: Web) -> IncidentDetailPublic:
    """Open an incident by hand (what no automation noticed)."""
    incident = web.pool.incidents.open_by_hand(
        body.title, body.detail, Severity(body.severity), current.context(body.reason)
    )
    return _detail(web, str(incident.id))


@router.get("/{incident_id}", operation_id="get_incident", response_model=IncidentDetailPublic)
def get_one(*, incident_id: str, current: CurrentAdmin, web: Web) -> IncidentDetailPublic:
    """One incident and its timeline (oldest first)."""
    return _detail(web, incident_id)


@router.post(
    "/{incident_id}/acknowledge",
    operation_id="acknowledge_incident",
    response_model=IncidentDetailPublic,
)
def acknowledge(
    *, incident_id: str, body: Noted, current: CurrentAdmin, web: Web
) -> IncidentDetailPublic:
    """Someone is on it: stops the failsafe from escalating it."""
    web.pool.incidents.acknowledge(incident_id, current.context(body.reason))
    return _detail(web, incident_id)


@router.post(
    "/{incident_id}/assign", operation_id="assign_incident", response_model=IncidentDetailPublic
)
def assign(
    *, incident_id: str, body: IncidentAssignment, current: CurrentAdmin, web: Web
) -> IncidentDetailPublic:
    """Give the incident to an admin of this pool."""
    web.pool.admins.get(body.admin_id)  # 404 for an unknown admin
    web.pool.incidents.assign(incident_id, body.admin_id, current.context(body.reason))
    return _detail(web, incident_id)


@router.post(
    "/{incident_id}/comments", operation_id="comment_incident", response_model=IncidentDetailPublic
)
def comment(
    *, incident_id: str, body: IncidentComment, current: CurrentAdmin, web: Web
) -> IncidentDetailPublic:
    """Add a comment to the timeline."""
    web.pool.incidents.comment(incident_id, body.text, current.context(""))
    return _detail(web, incident_id)


@router.post(
    "/{incident_id}/escalate", operation_id="escalate_incident", response_model=IncidentDetailPublic
)
def escalate(
    *, incident_id: str, body: Noted, current: CurrentAdmin, web: Web
) -> IncidentDetailPublic:
    """Escalate now: on the timeline, and e-mailed to the escalation recipients."""
    incident = web.pool.incidents.get(incident_id)
    context = current.context(body.reason)
    why = f"Escalated by an admin: {body.reason or 'no reason given'}."
    if not web.pool.failsafe.escalate(incident, web.public_url(), context, why):
        raise ConcurrencyConflict("the incident changed meanwhile; try again")
    return _detail(web, incident_id)


@router.post(
    "/{incident_id}/resolve", operation_id="resolve_incident", response_model=IncidentDetailPublic
)
def resolve(
    *, incident_id: str, body: IncidentResolution, current: CurrentAdmin, web: Web
) -> IncidentDetailPublic:
    """Close the incident with what was done."""
    web.pool.incidents.resolve(incident_id, body.resolution, current.context(""))
    return _detail(web, incident_id)
