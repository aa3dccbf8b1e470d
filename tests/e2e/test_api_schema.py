"""Schemathesis against the live, authenticated API: no 5xx, responses match their schemas."""

from __future__ import annotations

from typing import Any

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)

from tests.e2e.admin_client import AdminClient
from tests.e2e.conftest import PoolProcess

# Operations that would end the test's own session or never end (a live stream).
SKIPPED = ("logout", "stream_changes", "change_password", "disable_admin")


def operations(url: str) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    found = [result.ok() for result in schema.get_all_operations()]
    return [op for op in found if op.definition.raw.get("operationId") not in SKIPPED]


def test_the_api_conforms_to_its_schema(onboarded: tuple[PoolProcess, AdminClient]) -> None:
    # Driven by hand rather than by schemathesis' pytest plugin, which does not load under
    # our pytest version; the generation and the checks are schemathesis' own.
    pool, alice = onboarded
    session = requests.Session()
    session.cookies.update(dict(alice.http.cookies))
    session.headers.update({"Origin": pool.url, "X-CSRF-Token": alice.csrf_token or ""})
    checked = []
    for operation in operations(pool.url):

        @given(case=operation.as_strategy())
        @settings(
            max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def conforms(case: Any) -> None:
            case.call_and_validate(
                base_url=pool.url,
                session=session,
                checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
            )

        conforms()
        checked.append(operation.label)
    assert len(checked) >= 15
    # The session survived the whole run (nothing generated logged it out).
    assert alice.get("/api/auth/me").status_code == 200
