"""The Overview page's KPIs (those that exist so far; later capabilities add theirs)."""

from __future__ import annotations

import time

from fastapi import APIRouter

from projections.admins import count_active_admins
from web.deps import CurrentAdmin, Web, pool_identity
from web.routers.workers import all_workers, counts
from web.schemas import OverviewPublic, ProjectionPublic

router = APIRouter(prefix="/api/overview", tags=["overview"])


@router.get("", operation_id="get_overview", response_model=OverviewPublic)
def overview(*, current: CurrentAdmin, web: Web) -> OverviewPublic:
    """Pool identity, workers, admins, recent flag changes, events, projections, uptime."""
    pool = web.pool
    head = int(pool.store.recorder.max_notification_id() or 0)
    with pool.database.connection() as conn:
        active = count_active_admins(conn)
        total = conn.execute("SELECT count(*) AS n FROM admins_view").fetchone()
        changed = conn.execute(
            "SELECT count(*) AS n FROM audit_log WHERE event_type = 'FlagChanged' "
            "AND occurred_at > now() - interval '24 hours'"
        ).fetchone()
    projections = []
    for runner in pool.runners.values():
        position = runner.position()
        projections.append(
            ProjectionPublic(view=runner.name, position=position, lag=max(0, head - position))
        )
    return OverviewPublic(
        pool=pool_identity(web),
        admins_active=active,
        admins_total=int(total["n"]) if total else 0,
        flags_changed_24h=int(changed["n"]) if changed else 0,
        events_recorded=head,
        projections=projections,
        uptime_seconds=round(time.time() - web.started_at, 1),
        live_clients=len(web.hub.clients),
        workers=counts(all_workers(web)),
    )
