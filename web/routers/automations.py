"""The Automations panel: each automation's switch, parameters, runs and last decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter

from domain.automations import AUTOMATIONS, AutomationSpec
from infrastructure.operations import last_runs
from web.deps import CurrentAdmin, Web
from web.schemas import AutomationPublic, AutomationsPublic, DecisionPublic

router = APIRouter(prefix="/api/automations", tags=["automations"])


def _interval(web: Web, spec: AutomationSpec) -> int | None:
    if spec.interval_flag is not None:
        return web.pool.settings.int_value(spec.interval_flag)
    return spec.interval_seconds


@router.get("", operation_id="list_automations", response_model=AutomationsPublic)
def list_all(*, current: CurrentAdmin, web: Web) -> AutomationsPublic:
    """Every background automation; switches and parameters are flags (PUT /api/settings)."""
    runs = last_runs(web.pool)
    with web.pool.database.connection() as conn:
        decisions = {
            row["actor"]: row
            for row in conn.execute(
                """SELECT DISTINCT ON (actor) actor, event_type, reason, occurred_at
                   FROM audit_log WHERE actor = ANY(%s)
                   ORDER BY actor, occurred_at DESC, position DESC""",
                ([spec.actor for spec in AUTOMATIONS],),
            ).fetchall()
        }
    items = []
    for spec in AUTOMATIONS:
        enabled = spec.available and (
            spec.switch_flag is None or web.pool.settings.bool_value(spec.switch_flag)
        )
        run = runs.get(spec.id)
        last_at = datetime.fromtimestamp(run["at"], UTC) if run else None
        interval = _interval(web, spec)
        next_at = None
        if enabled and spec.trigger == "periodic" and interval:
            next_at = (last_at or datetime.now(UTC)) + timedelta(seconds=interval)
        decision = decisions.get(spec.actor)
        items.append(
            AutomationPublic(
                id=spec.id,
                title=spec.title,
                description=spec.description,
                available=spec.available,
                trigger=spec.trigger,
                switch_flag=spec.switch_flag,
                enabled=enabled,
                parameter_flags=list(spec.parameter_flags),
                last_run_at=last_at,
                next_run_at=next_at,
                last_run_error=run.get("error") if run else None,
                last_decision=DecisionPublic(
                    at=decision["occurred_at"],
                    actor=decision["actor"],
                    event=decision["event_type"],
                    reason=decision["reason"],
                )
                if decision
                else None,
            )
        )
    return AutomationsPublic(
        items=items, failover_mode=web.pool.settings.str_value("cluster.failover_mode")
    )
