"""Liveness, readiness and metrics (no session needed)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from web.deps import Web

router = APIRouter(tags=["health"])


@router.get("/healthz", operation_id="healthz")
def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    operation_id="readyz",
    responses={503: {"description": "A part is not ready; `failing` names it"}},
)
def readyz(*, web: Web) -> Any:
    """Database, Redis and read models are ready (503 naming what is not)."""
    checks = web.runtime.readiness()
    failing = {part: problem for part, problem in checks.items() if problem}
    body: dict[str, Any] = {
        "status": "ok" if not failing else "unavailable",
        "checks": {part: problem or "ok" for part, problem in checks.items()},
    }
    if failing:
        body["failing"] = sorted(failing)
        body["detail"] = "; ".join(f"{part}: {problem}" for part, problem in failing.items())
        body["code"] = "not_ready"
        return JSONResponse(body, status_code=503)
    return body


@router.get("/metrics", operation_id="metrics", response_class=Response)
def metrics(*, web: Web) -> Response:
    """Prometheus metrics of this pool and this process."""
    return Response(web.metrics.render(), media_type="text/plain; version=0.0.4")
