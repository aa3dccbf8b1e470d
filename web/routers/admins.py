"""Admin accounts: list, create, disable, enable."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from projections.admins import count_active_admins, list_admin_rows
from web.deps import CurrentAdmin, Web
from web.routers.auth import admin_public
from web.schemas import AdminCreate, AdminPublic, AdminsPublic, Reasoned

router = APIRouter(prefix="/api/admins", tags=["admins"])


def _rows(web: Web) -> dict[str, dict[str, Any]]:
    web.pool.runner("admins").catch_up()  # read your own writes
    with web.pool.database.connection() as conn:
        return {str(row["id"]): row for row in list_admin_rows(conn)}


def _public(web: Web, admin_id: str) -> AdminPublic:
    profile = web.pool.admins.profile(web.pool.admins.get(admin_id))
    return admin_public(profile, _rows(web).get(admin_id))


@router.get("", operation_id="list_admins", response_model=AdminsPublic)
def list_admins(*, current: CurrentAdmin, web: Web) -> AdminsPublic:
    """Every admin account of this pool."""
    rows = _rows(web)
    items = [
        admin_public(web.pool.admins.profile(web.pool.admins.get(admin_id)), row)
        for admin_id, row in rows.items()
    ]
    return AdminsPublic(items=items)


@router.post(
    "", operation_id="create_admin", response_model=AdminPublic, status_code=status.HTTP_201_CREATED
)
def create_admin(*, body: AdminCreate, current: CurrentAdmin, web: Web) -> AdminPublic:
    """Create another admin account."""
    admin = web.pool.admins.register(
        body.email, body.display_name, body.password, current.context(body.reason)
    )
    return _public(web, str(admin.id))


@router.post("/{admin_id}/disable", operation_id="disable_admin", response_model=AdminPublic)
def disable_admin(*, admin_id: str, body: Reasoned, current: CurrentAdmin, web: Web) -> AdminPublic:
    """Disable an admin: every session of theirs ends at once."""
    web.pool.runner("admins").catch_up()
    with web.pool.database.connection() as conn:
        active = count_active_admins(conn)
    web.pool.admins.disable(admin_id, current.context(body.reason), active_admins=active)
    return _public(web, admin_id)


@router.post("/{admin_id}/enable", operation_id="enable_admin", response_model=AdminPublic)
def enable_admin(*, admin_id: str, body: Reasoned, current: CurrentAdmin, web: Web) -> AdminPublic:
    """Re-enable a disabled admin."""
    web.pool.admins.enable(admin_id, current.context(body.reason))
    return _public(web, admin_id)
