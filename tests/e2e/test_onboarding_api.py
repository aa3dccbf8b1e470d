"""First boot: nothing answers but onboarding until the first admin exists; steps resume."""

from __future__ import annotations

import stat
from typing import Any

from tests.e2e.admin_client import PASSWORD, AdminClient
from tests.e2e.conftest import PoolProcess
from tests.waiting import eventually


def test_the_wizard_from_a_fresh_pool_to_completion(pool_process: PoolProcess) -> None:
    pool_process.start()
    browser = AdminClient(pool_process.url)

    # Before the first admin: only onboarding, health and static routes answer.
    for path in ("/api/settings", "/api/overview", "/api/audit", "/api/admins", "/api/stream"):
        refused = browser.get(path)
        assert refused.status_code == 403, path
        assert refused.json()["code"] == "onboarding_required"
    assert browser.get("/healthz").status_code == 200
    state = browser.get("/api/onboarding").json()
    assert state["next_step"] == "admin" and state["has_admin"] is False
    assert [s["step"] for s in state["steps"] if s["required"]] == [
        "admin",
        "pool",
        "public_url",
        "identity",
    ]
    assert {s["step"]: s["arrives_with"] for s in state["steps"] if not s["required"]}["smtp"]

    # Bad input is refused with the field's problem, and nothing is created.
    weak = browser.post(
        "/api/onboarding/admin",
        {"email": "alice@example.org", "display_name": "A", "password": "letmein1"},
    )
    assert weak.status_code == 422 and weak.json()["code"] == "weak_password"
    short = browser.post(
        "/api/onboarding/admin",
        {"email": "alice@example.org", "display_name": "A", "password": "x1"},
    )
    assert short.json()["detail"] == "the password must have at least 8 characters"
    malformed = browser.post("/api/onboarding/admin", {"email": "nope", "display_name": "A"})
    assert malformed.status_code == 422 and malformed.json()["code"] == "validation_error"
    assert browser.get("/api/onboarding").json()["has_admin"] is False

    # Step 1: the first admin, logged in at once with a fresh session cookie.
    created = browser.post(
        "/api/onboarding/admin",
        {"email": "Alice@Example.org", "display_name": "Alice", "password": PASSWORD},
    )
    assert created.status_code == 201, created.text
    cookie = created.headers["set-cookie"]
    assert "archipel_session=" in cookie
    for attribute in ("HttpOnly", "Path=/", "SameSite=strict"):
        assert attribute in cookie, attribute
    assert "Secure" not in cookie  # plain http here; https adds Secure and the __Host- prefix
    session_id = browser.session_cookie()
    assert session_id is not None and len(session_id) >= 43  # 256 random bits, base64
    browser.csrf_token = created.json()["session"]["csrf_token"]

    # The same step again (here or from a stranger) is refused: one first admin only.
    stranger = AdminClient(pool_process.url)
    again = stranger.post(
        "/api/onboarding/admin",
        {"email": "mallory@example.org", "display_name": "M", "password": PASSWORD},
    )
    assert again.status_code == 409 and again.json()["code"] == "onboarding_complete"
    assert stranger.get("/api/settings").status_code == 401  # no session: not logged in

    # Steps run in order; the wizard resumes after a restart where it stopped.
    early = browser.post("/api/onboarding/identity")
    assert early.status_code == 409 and "comes before" in early.json()["detail"]
    assert (
        browser.post("/api/onboarding/pool", {"pool_name": "paris-1", "site": "Paris"}).status_code
        == 200
    )
    assert pool_process.stop() == 0
    pool_process.start()
    assert browser.get("/api/onboarding").json()["next_step"] == "public_url"
    bad_url = browser.post("/api/onboarding/public-url", {"public_url": "ftp://x"})
    assert bad_url.status_code == 422
    assert (
        browser.post("/api/onboarding/public-url", {"public_url": pool_process.url}).status_code
        == 200
    )

    # Step 4: the pool's Ed25519 identity, its private key sealed in a 0600 file.
    identity = browser.post("/api/onboarding/identity")
    assert identity.status_code == 200, identity.text
    assert identity.json()["key_id"] == "ed25519:1" and identity.json()["public_key"]
    key_file = pool_process.data_dir / "secrets" / "pool-identity.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(key_file.read_bytes()) == 24 + 32 + 16  # nonce, key, MAC: encrypted at rest
    assert browser.post("/api/onboarding/identity").status_code == 409

    # Optional steps may be skipped; required ones may not.
    assert browser.post("/api/onboarding/steps/smtp/skip").status_code == 200
    assert browser.post("/api/onboarding/steps/pool/skip").status_code == 409
    assert browser.post("/api/onboarding/steps/nonsense/skip").status_code == 404
    done = browser.post("/api/onboarding/complete")
    assert done.status_code == 200 and done.json()["completed"] is True
    steps = {s["step"]: s["status"] for s in done.json()["steps"]}
    assert steps["smtp"] == "skipped" and steps["branding"] == "pending"

    # Set up: the API answers, and every step is in the audit trail with its actor.
    overview = browser.get("/api/overview").json()
    assert overview["pool"]["name"] == "paris-1" and overview["pool"]["site"] == "Paris"

    # The audit view is eventually consistent: the last steps show within moments.
    def audit_until_completed() -> list[dict[str, Any]] | None:
        items: list[dict[str, Any]] = browser.get("/api/audit", params={"limit": 100}).json()[
            "items"
        ]
        return items if any(e["event_type"] == "Completed" for e in items) else None

    audit = eventually(audit_until_completed)
    kinds = {(e["aggregate_type"], e["event_type"]) for e in audit}
    assert ("Onboarding", "FirstAdminCreated") in kinds
    assert ("Onboarding", "IdentityGenerated") in kinds
    assert ("Onboarding", "Completed") in kinds
    assert "Alice" not in str(audit)  # personal fields stay sealed in the audit trail
