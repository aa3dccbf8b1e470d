"""The FastAPI application of a pool: admin API, live stream, health, metrics and the SPA."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from infrastructure.bootstrap import PoolRuntime
from web.deps import WebContext
from web.errors import error_body, install_error_handlers
from web.metrics import HttpMetrics
from web.routers import (
    admins,
    audit,
    auth,
    automations,
    federation,
    health,
    incidents,
    migrations,
    models,
    notifications,
    onboarding,
    overview,
    settings,
    smtp,
    stream,
    workers,
)
from web.schemas import ERROR_RESPONSES
from web.security import CSRF_HEADER, UNSAFE_METHODS, CsrfTokens, same_origin
from web.spa import mount_spa
from web.stream import NoticeHub

# Paths that answer before the first admin exists.
_OPEN_BEFORE_ONBOARDING = ("/api/onboarding", "/api/auth/csrf")
_API_PREFIXES = ("/api/", "/federation/", "/v1/", "/ollama/")


def build_api(lifespan: Any = None) -> FastAPI:
    """Routes, models and error handling: everything the OpenAPI document describes."""
    app = FastAPI(
        title="Archipel",
        version="0.1.0",
        description="Admin API of an Archipel pool. State changes need the session cookie, "
        f"the `{CSRF_HEADER}` header and a same-origin `Origin`.",
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    for router in (
        onboarding.router,
        auth.router,
        admins.router,
        settings.router,
        audit.router,
        overview.router,
        stream.router,
        workers.router,
        workers.topology_router,
        models.router,
        models.distribution_router,
        incidents.router,
        migrations.router,
        automations.router,
        smtp.router,
        notifications.router,
    ):
        app.include_router(router, responses=ERROR_RESPONSES)
    app.include_router(federation.router, responses=ERROR_RESPONSES)
    app.include_router(federation.cluster_router, responses=ERROR_RESPONSES)
    app.include_router(federation.protocol)
    app.include_router(health.router)
    return app


def create_app(runtime: PoolRuntime) -> FastAPI:
    pool = runtime.pool
    hub = NoticeHub(pool.redis_url, pool.database)
    metrics = HttpMetrics(runtime, live_clients=lambda: len(hub.clients))
    web = WebContext(runtime=runtime, csrf=CsrfTokens(pool.master_key), hub=hub, metrics=metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await hub.start()
        try:
            yield
        finally:
            await hub.stop()

    app = build_api(lifespan)
    app.state.web = web

    # Plain ASGI middleware (not BaseHTTPMiddleware, which costs a task group per body chunk:
    # it halved upload throughput). The last added runs first: metrics, then the guard.
    app.add_middleware(RequestGuard, web=web)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    mount_spa(app)  # last: it answers every path no route took
    return app


class RequestGuard:
    """The onboarding gate, then CSRF token and same-origin checks on state changes."""

    def __init__(self, app: ASGIApp, web: WebContext) -> None:
        self.app = app
        self.web = web

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = await self._refusal(Request(scope))
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _refusal(self, request: Request) -> Response | None:
        path = request.url.path
        if (
            path.startswith(_API_PREFIXES)
            and not path.startswith(_OPEN_BEFORE_ONBOARDING)
            and not self.web.pool.onboarding.admin_seen  # (no thread hop once set up)
            and not await asyncio.to_thread(self.web.pool.onboarding.has_admin)
        ):
            return JSONResponse(
                error_body(
                    "this pool is not set up yet: finish onboarding first", "onboarding_required"
                ),
                status_code=403,
            )
        if request.method in UNSAFE_METHODS and path.startswith("/api/"):
            why = _csrf_refusal(self.web, request)
            if why is not None:
                return JSONResponse(error_body(why, "csrf_failed"), status_code=403)
        return None


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            self.metrics.observe(scope, status, time.perf_counter() - started)


def _csrf_refusal(web: WebContext, request: Request) -> str | None:
    """Why this state-changing request is refused, or None when it may go on."""
    if not same_origin(request, web.public_url()):
        return "cross-origin or missing Origin header on a state-changing request"
    token = request.headers.get(CSRF_HEADER)
    if not token:
        return f"missing {CSRF_HEADER} header (GET /api/auth/csrf gives one)"
    cookies = web.cookies()
    session_id = request.cookies.get(cookies.session_name)
    if session_id and web.csrf.valid("session", session_id, token):
        return None
    pre = request.cookies.get(cookies.pre_session_name)
    if pre and web.csrf.valid("pre", pre, token):
        return None
    return f"invalid {CSRF_HEADER} for this session"
