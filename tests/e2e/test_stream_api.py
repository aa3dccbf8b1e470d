"""The live stream: delivery after commit, resume, resync, end at logout, two-process fanout."""

from __future__ import annotations

import subprocess
import time

import psycopg

from tests.e2e.admin_client import AdminClient, SseEvent, SseReader
from tests.e2e.conftest import ARCHIPEL, PoolProcess, free_port

Onboarded = tuple[PoolProcess, AdminClient]


def names_flag(key: str) -> object:
    def predicate(event: SseEvent) -> bool:
        return event.event == "change" and any(
            n["view"] == "settings" and n["key"] == key for n in event.data
        )

    return predicate


def test_changes_arrive_live_and_resume_after_a_disconnect(onboarded: Onboarded) -> None:
    pool, alice = onboarded
    anonymous = AdminClient(pool.url).get("/api/stream")
    assert anonymous.status_code == 401

    stream = SseReader(alice)
    ready = stream.next()
    assert ready.event == "ready" and int(ready.id or 0) > 0
    alice.put("/api/settings/pool.maintenance_banner", {"value": "upgrade at 6", "reason": "r"})
    change = stream.wait_for(names_flag("pool.maintenance_banner"))
    assert change.id is not None
    stream.close()

    # While disconnected, two more changes happen...
    alice.put("/api/settings/pool.maintenance_banner", {"value": "upgrade at 7", "reason": "r"})
    alice.put("/api/settings/api.rate_limit_per_minute", {"value": 77, "reason": "r"})
    # ...and a client resuming from its last event id gets them.
    resumed = SseReader(alice, last_event_id=change.id)
    missed = resumed.wait_for(names_flag("api.rate_limit_per_minute"))
    keys = {n["key"] for n in missed.data if n["view"] == "settings"}
    assert keys >= {"pool.maintenance_banner", "api.rate_limit_per_minute"}
    resumed.close()


def test_a_client_too_far_behind_is_told_to_resync(onboarded: Onboarded) -> None:
    pool, alice = onboarded
    alice.put("/api/settings/pool.debug", {"value": True, "reason": "r"})
    alice.put("/api/settings/pool.debug", {"value": False, "reason": "r"})
    # The pool keeps notices for an hour; simulate that the oldest ones were pruned.
    with psycopg.connect(pool.database_url(), autocommit=True) as conn:
        conn.execute(
            "DELETE FROM change_notices WHERE position < (SELECT max(position) FROM change_notices)"
        )
    stream = SseReader(alice, last_event_id="1")
    assert stream.next().event == "resync"
    stream.close()


def test_logout_closes_the_stream_within_5_seconds(onboarded: Onboarded) -> None:
    pool, _ = onboarded
    browser = AdminClient(pool.url)
    browser.login("alice@example.org")
    stream = SseReader(browser)
    assert stream.next().event == "ready"
    started = time.monotonic()
    assert browser.post("/api/auth/logout").status_code == 204
    assert stream.ended.wait(5)
    assert time.monotonic() - started < 5
    stream.close()


def test_a_change_on_one_web_process_reaches_a_client_of_another(onboarded: Onboarded) -> None:
    pool, alice = onboarded
    # A second web process on the same PostgreSQL and Redis (scale-out behind a balancer).
    port = free_port()
    # Every process of a pool shares its master key (CSRF tokens, e-mail digests, secrets).
    secrets = pool.data_dir.parent / "second" / "secrets"
    secrets.mkdir(parents=True)
    (secrets / "master.key").write_bytes((pool.data_dir / "secrets" / "master.key").read_bytes())
    log = (pool.data_dir.parent / f"second-{port}.log").open("wb")
    second = subprocess.Popen(
        [
            ARCHIPEL,
            "serve",
            "--roles",
            "web",
            "--port",
            str(port),
            "--data-dir",
            str(pool.data_dir.parent / "second"),
            "--database-url",
            pool.database_url(),
            "--redis-url",
            pool.redis_url(),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        other = PoolProcess(pool.data_dir.parent / "second", port=port, process=second)
        deadline = time.monotonic() + 60
        while True:
            try:
                if AdminClient(other.url).get("/healthz").status_code == 200:
                    break
            except Exception:
                pass
            assert time.monotonic() < deadline and second.poll() is None, "second web failed"
            time.sleep(0.2)
        # The same admin session works on both processes (shared PostgreSQL).
        on_second = AdminClient(other.url)
        on_second.http.cookies = alice.http.cookies
        stream = SseReader(on_second)
        assert stream.next().event == "ready"
        alice.put("/api/settings/cluster.failover_mode", {"value": "auto", "reason": "fanout"})
        stream.wait_for(names_flag("cluster.failover_mode"))
        stream.close()
        # With the shared key, state changes work on either process.
        on_second.csrf_token = alice.csrf_token
        changed = on_second.put("/api/settings/pool.debug", {"value": True, "reason": "via B"})
        assert changed.status_code == 200, changed.text
    finally:
        second.terminate()
        second.wait(timeout=30)
        log.close()
