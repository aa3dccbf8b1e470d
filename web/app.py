"""The FastAPI application of a pool. This issue: health, readiness and metrics."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from infrastructure.bootstrap import PoolRuntime
from web.metrics import render_metrics


def create_app(runtime: PoolRuntime) -> FastAPI:
    app = FastAPI(title="Archipel", version="0.1.0", docs_url=None, redoc_url=None)
    app.state.runtime = runtime

    @app.get("/healthz", operation_id="healthz", tags=["health"])
    def healthz() -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}

    @app.get(
        "/readyz",
        operation_id="readyz",
        tags=["health"],
        responses={503: {"description": "A part is not ready; `failing` names it"}},
    )
    def readyz() -> Any:
        """Database, Redis and read models are ready (503 naming what is not)."""
        checks = runtime.readiness()
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

    @app.get("/metrics", operation_id="metrics", tags=["health"], response_class=Response)
    def metrics() -> Response:
        """Prometheus metrics of this pool."""
        return Response(render_metrics(runtime), media_type="text/plain; version=0.0.4")

    return app
