"""What routes receive: the pool's services and the admin behind the request."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from application.admins import NotAuthenticated
from domain.admins import Admin
from domain.context import CommandContext
from infrastructure.bootstrap import Pool, PoolRuntime
from web.metrics import HttpMetrics
from web.schemas import PoolIdentityPublic
from web.security import CookiePolicy, CsrfTokens, cookie_policy
from web.stream import NoticeHub


@dataclass
class WebContext:
    runtime: PoolRuntime
    csrf: CsrfTokens
    hub: NoticeHub
    metrics: HttpMetrics
    started_at: float = field(default_factory=time.time)
    _public_url: tuple[float, str] | None = None

    @property
    def pool(self) -> Pool:
        return self.runtime.pool

    def public_url(self) -> str:
        """The bootstrap public URL, else the one set during onboarding (cached 5 s)."""
        config = self.pool.config
        if config.public_url:
            return config.public_url
        now = time.monotonic()
        if self._public_url is None or now - self._public_url[0] > 5:
            self._public_url = (now, self.pool.public_url())
        return self._public_url[1]

    def cookies(self) -> CookiePolicy:
        return cookie_policy(self.public_url())


def pool_identity(web: WebContext) -> PoolIdentityPublic:
    profile = web.pool.onboarding.profile()
    return PoolIdentityPublic(
        id=web.pool.pool_id,
        name=profile.get("pool_name", ""),
        site=profile.get("site", ""),
        public_url=web.public_url(),
        key_id=profile.get("key_id", ""),
    )


def get_web(request: Request) -> WebContext:
    web: WebContext = request.app.state.web
    return web


Web = Annotated[WebContext, Depends(get_web)]


@dataclass(frozen=True)
class AdminSession:
    admin: Admin
    session_id: str

    @property
    def admin_id(self) -> str:
        return str(self.admin.id)

    def context(self, reason: str) -> CommandContext:
        return CommandContext(actor=f"admin:{self.admin.id}", reason=reason)


def get_current_admin(request: Request, web: Web) -> AdminSession:
    session_id = request.cookies.get(web.cookies().session_name)
    if not session_id:
        raise NotAuthenticated("log in first")
    admin = web.pool.admins.authenticate(session_id)
    return AdminSession(admin=admin, session_id=session_id)


CurrentAdmin = Annotated[AdminSession, Depends(get_current_admin)]
