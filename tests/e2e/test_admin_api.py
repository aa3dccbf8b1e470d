"""CSRF on every mutating route, settings, audit, overview, metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.e2e.admin_client import AdminClient
from tests.e2e.conftest import PoolProcess
from tests.waiting import eventually

Onboarded = tuple[PoolProcess, AdminClient]
MUTATING = ("post", "put", "patch", "delete")


def mutating_routes(openapi: dict[str, object]) -> list[tuple[str, str]]:
    paths = openapi["paths"]
    assert isinstance(paths, dict)
    return [
        (
            method.upper(),
            path.replace("{admin_id}", "x")
            .replace("{key}", "pool.debug")
            .replace("{step}", "smtp"),
        )
        for path, operations in paths.items()
        if path.startswith("/api/")
        for method in operations
        if method in MUTATING
    ]


def test_every_state_change_under_api_needs_the_csrf_token(onboarded: Onboarded) -> None:
    pool, alice = onboarded
    openapi = alice.get("/openapi.json").json()
    routes = mutating_routes(openapi)
    assert len(routes) >= 12
    assert all(op.get("operationId") for ops in openapi["paths"].values() for op in ops.values())
    session = alice.http.cookies
    for method, path in routes:
        # A logged-in session and the right Origin, but no token: refused.
        missing = httpx.request(
            method, pool.url + path, cookies=session, json={}, headers={"Origin": pool.url}
        )
        assert missing.status_code == 403, (method, path)
        assert missing.json()["code"] == "csrf_failed"
        # A token of another session: refused.
        forged = httpx.request(
            method,
            pool.url + path,
            cookies=session,
            json={},
            headers={"Origin": pool.url, "X-CSRF-Token": "x" * 43},
        )
        assert forged.status_code == 403, (method, path)
        # The right token from a foreign page: refused.
        foreign = httpx.request(
            method,
            pool.url + path,
            cookies=session,
            json={},
            headers={"Origin": "https://evil.example", "X-CSRF-Token": alice.csrf_token or ""},
        )
        assert foreign.status_code == 403, (method, path)
        assert "Origin" in foreign.json()["detail"]
    # Nothing of all that changed any state.
    flags = {f["key"]: f for f in alice.get("/api/settings").json()["items"]}
    assert flags["pool.debug"]["value"] is False


def test_settings_show_every_flag_with_its_schema_and_accept_changes(onboarded: Onboarded) -> None:
    _, alice = onboarded
    flags = {f["key"]: f for f in alice.get("/api/settings").json()["items"]}
    assert len(flags) >= 20
    interval = flags["cluster.balancer_interval_seconds"]
    assert (interval["type"], interval["minimum"], interval["maximum"]) == ("int", 5, 86400)
    assert interval["scope"] == "replicated" and interval["page"] == "cluster-config"
    assert flags["cluster.failover_mode"]["choices"] == ["auto", "manual"]

    too_small = alice.put(
        "/api/settings/cluster.balancer_interval_seconds", {"value": 1, "reason": "faster"}
    )
    assert too_small.status_code == 422
    assert too_small.json() == {
        "detail": "cluster.balancer_interval_seconds: must be at least 5 seconds, got 1",
        "code": "invalid_flag_value",
    }
    assert alice.put("/api/settings/no.such", {"value": 1, "reason": "x"}).status_code == 404
    no_reason = alice.put("/api/settings/pool.debug", {"value": True, "reason": ""})
    assert no_reason.status_code == 422 and no_reason.json()["code"] == "validation_error"
    wrong_type = alice.put("/api/settings/pool.debug", {"value": "yes", "reason": "r"})
    assert wrong_type.status_code == 422

    changed = alice.put(
        "/api/settings/pool.maintenance_banner",
        {"value": "Upgrade at 18:00", "reason": "rota"},
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert body["value"] == "Upgrade at 18:00"
    assert body["last_change"]["reason"] == "rota"
    assert body["last_change"]["actor"].startswith("admin:")
    assert alice.get("/api/settings/pool.maintenance_banner").json()["is_default"] is False


def test_audit_filters_and_pages_newest_first(onboarded: Onboarded) -> None:
    _, alice = onboarded
    for value in (101, 102, 103):
        alice.put(
            "/api/settings/api.rate_limit_per_minute", {"value": value, "reason": f"step {value}"}
        )

    # The audit view is eventually consistent: it shows the last change within moments.
    def newest_two() -> dict[str, Any] | None:
        page = alice.get("/api/audit", params={"event_type": "FlagChanged", "limit": 2}).json()
        newest = page["items"][0]["payload"]["new_value"] if page["items"] else None
        return page if newest == 103 else None

    page = eventually(newest_two)
    assert [e["payload"]["new_value"] for e in page["items"]] == [103, 102]
    first = page["items"][0]
    assert first["actor"].startswith("admin:") and first["reason"] == "step 103"
    assert first["origin_pool"] and first["correlation_id"] and first["occurred_at"]
    older = alice.get(
        "/api/audit",
        params={"event_type": "FlagChanged", "limit": 2, "cursor": page["next_cursor"]},
    ).json()
    assert older["items"][0]["payload"]["new_value"] == 101

    by_correlation = alice.get(
        "/api/audit", params={"correlation_id": first["correlation_id"]}
    ).json()
    assert {e["position"] for e in by_correlation["items"]} >= {first["position"]}
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert alice.get("/api/audit", params={"since": future}).json()["items"] == []
    assert alice.get("/api/audit", params={"limit": 0}).status_code == 422
    nul = alice.get("/api/audit", params={"actor": "a\x00b"})
    assert nul.status_code == 422 and nul.json()["code"] == "invalid_input"
    by_actor = alice.get("/api/audit", params={"actor": "automation:notifier"}).json()
    assert all(e["actor"] == "automation:notifier" for e in by_actor["items"])


def test_overview_and_metrics(onboarded: Onboarded) -> None:
    pool, alice = onboarded
    overview = alice.get("/api/overview").json()
    assert overview["pool"]["key_id"] == "ed25519:1"
    assert overview["admins_active"] >= 1 and overview["events_recorded"] > 0
    assert {p["view"] for p in overview["projections"]} >= {"audit", "settings", "admins"}
    assert overview["uptime_seconds"] > 0

    metrics = httpx.get(f"{pool.url}/metrics").text
    assert (
        'archipel_http_requests_total{method="GET",route="/api/overview",status="200"}' in metrics
    )
    assert "archipel_http_request_duration_seconds_bucket" in metrics
    assert "archipel_events_recorded" in metrics
    assert "archipel_projection_lag_events" in metrics
    assert "archipel_sse_clients" in metrics
