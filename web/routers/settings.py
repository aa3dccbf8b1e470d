"""Runtime flags: every flag with its schema and value; change one with a reason."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter

from application.settings import FlagState
from domain.flags import FlagType
from projections.settings import read_settings_view
from web.deps import CurrentAdmin, Web
from web.schemas import FlagChangePublic, FlagPublic, FlagsPublic, FlagUpdate

router = APIRouter(prefix="/api/settings", tags=["settings"])


def flag_public(state: FlagState, change: dict[str, Any] | None) -> FlagPublic:
    spec = state.spec
    return FlagPublic(
        key=spec.key,
        type=spec.type.value,
        value=state.value,
        default=spec.default,
        is_default=state.is_default,
        scope=spec.scope.value,
        page=spec.page.value,
        description=spec.description,
        minimum=spec.minimum,
        maximum=spec.maximum,
        choices=list(spec.choices),
        unit=spec.unit,
        max_length=spec.max_length if spec.type is FlagType.STRING else None,
        last_change=FlagChangePublic(
            actor=change["changed_by"], reason=change["reason"], at=change["changed_at"]
        )
        if change
        else None,
    )


def _changes(web: Web) -> dict[str, dict[str, Any]]:
    with web.pool.database.connection() as conn:
        return read_settings_view(conn)


@router.get("", operation_id="list_settings", response_model=FlagsPublic)
def list_settings(*, current: CurrentAdmin, web: Web) -> FlagsPublic:
    """Every runtime flag: schema, current value and who changed it last, and why."""
    changes = _changes(web)
    return FlagsPublic(
        items=[flag_public(s, changes.get(s.spec.key)) for s in web.pool.settings.current()]
    )


@router.get(
    "/{key}",
    operation_id="get_setting",
    response_model=FlagPublic,
    responses={404: {"description": "No such flag"}},
)
def get_setting(*, key: str, current: CurrentAdmin, web: Web) -> FlagPublic:
    """One flag."""
    states = {s.spec.key: s for s in web.pool.settings.current()}
    if key not in states:
        web.pool.settings.value(key)  # raises UnknownFlag with suggestions
    return flag_public(states[key], _changes(web).get(key))


@router.put(
    "/{key}",
    operation_id="update_setting",
    response_model=FlagPublic,
    responses={
        404: {"description": "No such flag"},
        422: {"description": "Value out of type or bounds; detail names the bound"},
    },
)
def update_setting(*, key: str, body: FlagUpdate, current: CurrentAdmin, web: Web) -> FlagPublic:
    """Change one flag; the reason goes in the audit trail."""
    context = current.context(body.reason)
    state = web.pool.settings.set_flag(key, body.value, context)
    # The answer says who changed it and why from the command itself: waiting for the
    # settings view here would serialise every request with its projection.
    change = {
        "changed_by": context.actor,
        "reason": context.reason,
        "changed_at": datetime.now(UTC),
    }
    return flag_public(state, change)
