"""Logging in and out, session rotation and expiry, admins, passwords, lockout."""

from __future__ import annotations

import time

import psycopg
import pytest

from tests.e2e.admin_client import PASSWORD, AdminClient, SseReader
from tests.e2e.conftest import PoolProcess

Onboarded = tuple[PoolProcess, AdminClient]


def test_each_login_gets_a_new_session_and_logout_ends_it(onboarded: Onboarded) -> None:
    pool, _ = onboarded
    browser = AdminClient(pool.url)
    assert browser.login("alice@example.org").status_code == 200
    first = browser.session_cookie()
    me = browser.get("/api/auth/me")
    assert me.status_code == 200 and me.json()["admin"]["email"] == "alice@example.org"

    assert browser.login("alice@example.org").status_code == 200
    second = browser.session_cookie()
    assert second and second != first
    stale = AdminClient(pool.url)
    stale.http.cookies.set("archipel_session", first or "")
    assert stale.get("/api/auth/me").status_code == 401  # the replaced session is gone

    assert browser.post("/api/auth/logout").status_code == 204
    assert browser.session_cookie() is None
    after = AdminClient(pool.url)
    after.http.cookies.set("archipel_session", second or "")
    refused = after.get("/api/auth/me")
    assert refused.status_code == 401 and refused.json()["code"] == "not_authenticated"


def test_wrong_password_and_unknown_account_look_the_same(onboarded: Onboarded) -> None:
    pool, _ = onboarded
    browser = AdminClient(pool.url)
    wrong = browser.login("alice@example.org", "not-the-password-9")
    unknown = browser.login("nobody@example.org", "not-the-password-9")
    assert wrong.status_code == unknown.status_code == 401
    assert (
        wrong.json()
        == unknown.json()
        == {"detail": "wrong e-mail address or password", "code": "invalid_credentials"}
    )
    assert browser.session_cookie() is None


def test_idle_and_absolute_timeouts_end_sessions(onboarded: Onboarded) -> None:
    pool, _ = onboarded
    idle, absolute = AdminClient(pool.url), AdminClient(pool.url)
    idle.login("alice@example.org")
    absolute.login("alice@example.org")
    # Time passes (the sessions are aged in the database rather than by waiting).
    with psycopg.connect(pool.database_url(), autocommit=True) as conn:
        conn.execute(
            "UPDATE admin_sessions SET last_seen_at = now() - interval '31 minutes' "
            "WHERE id_hash = encode(sha256(%s::bytea), 'hex')",
            (idle.session_cookie(),),
        )
        conn.execute(
            "UPDATE admin_sessions SET created_at = now() - interval '13 hours' "
            "WHERE id_hash = encode(sha256(%s::bytea), 'hex')",
            (absolute.session_cookie(),),
        )
    assert idle.get("/api/auth/me").status_code == 401  # idle timeout: 30 minutes
    assert absolute.get("/api/auth/me").status_code == 401  # absolute timeout: 12 hours


def test_admins_create_disable_and_enable_each_other(onboarded: Onboarded) -> None:
    pool, alice = onboarded
    created = alice.post(
        "/api/admins",
        {
            "email": "bob@example.org",
            "display_name": "Bob",
            "password": PASSWORD,
            "reason": "second on call",
        },
    )
    assert created.status_code == 201, created.text
    bob_id = created.json()["id"]
    duplicate = alice.post(
        "/api/admins",
        {"email": "BOB@example.org", "display_name": "B", "password": PASSWORD, "reason": "again"},
    )
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "email_taken"

    bob = AdminClient(pool.url)
    assert bob.login("bob@example.org").status_code == 200
    stream = SseReader(bob)
    assert stream.next().event == "ready"

    # Disabling Bob ends his sessions and closes his live stream within 5 seconds.
    disabled = alice.post(f"/api/admins/{bob_id}/disable", {"reason": "left the team"})
    assert disabled.status_code == 200 and disabled.json()["status"] == "disabled"
    assert stream.ended.wait(5), "the stream of a disabled admin stayed open"
    assert bob.get("/api/auth/me").status_code == 401
    assert bob.login("bob@example.org").status_code == 401
    stream.close()

    me = alice.get("/api/auth/me").json()["admin"]["id"]
    assert alice.post(f"/api/admins/{me}/disable", {"reason": "oops"}).status_code == 409
    assert alice.post(f"/api/admins/{bob_id}/enable", {"reason": "back"}).status_code == 200
    assert bob.login("bob@example.org").status_code == 200
    listed = {a["email"]: a for a in alice.get("/api/admins").json()["items"]}
    assert listed["bob@example.org"]["status"] == "active"
    assert listed["bob@example.org"]["last_login_at"] is not None
    assert alice.post("/api/admins/not-an-id/enable", {"reason": "x"}).status_code == 404


def test_changing_your_own_password(onboarded: Onboarded) -> None:
    pool, alice = onboarded
    alice.post(
        "/api/admins",
        {
            "email": "carol@example.org",
            "display_name": "Carol",
            "password": PASSWORD,
            "reason": "new hire",
        },
    )
    carol = AdminClient(pool.url)
    carol.login("carol@example.org")
    wrong = carol.put(
        "/api/auth/password", {"old_password": "guess-guess-1", "new_password": "sunny-bridge-77"}
    )
    assert wrong.status_code == 401
    weak = carol.put("/api/auth/password", {"old_password": PASSWORD, "new_password": "qwertyuiop"})
    assert weak.status_code == 422 and weak.json()["code"] == "weak_password"
    ok = carol.put(
        "/api/auth/password", {"old_password": PASSWORD, "new_password": "sunny-bridge-77"}
    )
    assert ok.status_code == 204
    assert AdminClient(pool.url).login("carol@example.org").status_code == 401
    assert AdminClient(pool.url).login("carol@example.org", "sunny-bridge-77").status_code == 200


@pytest.fixture
def lockout_pool(pool_process: PoolProcess) -> tuple[PoolProcess, AdminClient]:
    # A pool of its own: failed logins from 127.0.0.1 must not lock other tests out.
    pool_process.start()
    alice = AdminClient(pool_process.url)
    alice.onboard()
    changed = alice.put(
        "/api/settings/auth.login_lockout_threshold", {"value": 3, "reason": "stricter"}
    )
    assert changed.status_code == 200
    return pool_process, alice


def test_repeated_failures_back_off_with_429(lockout_pool: tuple[PoolProcess, AdminClient]) -> None:
    pool, _ = lockout_pool
    attacker = AdminClient(pool.url)
    for _ in range(3):
        assert attacker.login("alice@example.org", "wrong-guess-123").status_code == 401
    locked = attacker.login("alice@example.org", PASSWORD)  # even the right password waits
    assert locked.status_code == 429
    assert locked.json()["code"] == "too_many_attempts"
    assert 0 < int(locked.headers["Retry-After"]) <= 30
    # An unknown account is throttled the same way (the client address is counted too).
    unknown = attacker.login("ghost@example.org", "wrong-guess-123")
    assert unknown.status_code == 429
    # The lock lifts with time (aged here in Redis instead of waiting 30 seconds).
    import redis

    client = redis.Redis(unix_socket_path=str(pool.data_dir / "redis" / "redis.sock"))
    for key in client.scan_iter("archipel:login:lock:*"):
        client.pexpire(key, 1)
    time.sleep(0.05)
    assert attacker.login("alice@example.org", PASSWORD).status_code == 200
