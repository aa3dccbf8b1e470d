"""Login, logout, the current admin, CSRF tokens and password changes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status

from application.admins import AdminProfile
from web.deps import CurrentAdmin, Web
from web.schemas import AdminPublic, CsrfPublic, LoginRequest, PasswordChange, SessionPublic
from web.security import new_pre_session_id

router = APIRouter(prefix="/api/auth", tags=["auth"])

AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "Wrong e-mail address or password (never says which)"},
    429: {"description": "Too many failed logins; see Retry-After"},
}


def admin_public(profile: AdminProfile, row: dict[str, Any] | None = None) -> AdminPublic:
    extra = row or {}
    return AdminPublic(
        id=profile.id,
        email=profile.email,
        display_name=profile.display_name,
        status=profile.status,
        created_at=extra.get("created_at"),
        last_login_at=extra.get("last_login_at"),
    )


def open_session(web: Web, response: Response, request: Request, session_id: str) -> str:
    """Set the session cookie (a new id: the old pre-session goes) and return its CSRF token."""
    cookies = web.cookies()
    absolute = web.pool.settings.int_value("auth.session_absolute_timeout_hours") * 3600
    cookies.set(response, cookies.session_name, session_id, max_age=absolute)
    if cookies.pre_session_name in request.cookies:
        cookies.clear(response, cookies.pre_session_name)
    return web.csrf.token_for("session", session_id)


@router.get("/csrf", operation_id="get_csrf_token", response_model=CsrfPublic)
def csrf_token(*, request: Request, response: Response, web: Web) -> CsrfPublic:
    """A CSRF token for this browser (sets an anonymous pre-session cookie if needed)."""
    cookies = web.cookies()
    session_id = request.cookies.get(cookies.session_name)
    if session_id:
        return CsrfPublic(csrf_token=web.csrf.token_for("session", session_id))
    pre = request.cookies.get(cookies.pre_session_name) or new_pre_session_id()
    cookies.set(response, cookies.pre_session_name, pre, max_age=None)
    return CsrfPublic(csrf_token=web.csrf.token_for("pre", pre))


@router.post("/login", operation_id="login", response_model=SessionPublic, responses=AUTH_ERRORS)
def login(*, body: LoginRequest, request: Request, response: Response, web: Web) -> SessionPublic:
    """Log in with e-mail address and password; starts a new session."""
    client = request.client.host if request.client else "unknown"
    cookies = web.cookies()
    old_session = request.cookies.get(cookies.session_name)
    logged_in = web.pool.admins.login(body.email, body.password, client)
    if old_session:
        web.pool.sessions.close(old_session)  # a login always replaces the session
    token = open_session(web, response, request, logged_in.session_id)
    return SessionPublic(admin=admin_public(logged_in.admin), csrf_token=token)


@router.post("/logout", operation_id="logout", status_code=status.HTTP_204_NO_CONTENT)
def logout(*, current: CurrentAdmin, response: Response, web: Web) -> None:
    """End this session (its live stream closes too)."""
    web.pool.admins.logout(current.session_id, current.admin)
    web.cookies().clear(response, web.cookies().session_name)


@router.get("/me", operation_id="get_me", response_model=SessionPublic)
def me(*, current: CurrentAdmin, web: Web) -> SessionPublic:
    """The admin behind this session, and the session's CSRF token."""
    profile = web.pool.admins.profile(current.admin)
    return SessionPublic(
        admin=admin_public(profile), csrf_token=web.csrf.token_for("session", current.session_id)
    )


@router.put(
    "/password",
    operation_id="change_password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={401: {"description": "The current password is wrong"}},
)
def change_password(*, body: PasswordChange, current: CurrentAdmin, web: Web) -> None:
    """Change your own password (the current one is required)."""
    web.pool.admins.change_password(
        current.admin_id,
        body.old_password,
        body.new_password,
        current.context("password changed by its owner"),
    )
