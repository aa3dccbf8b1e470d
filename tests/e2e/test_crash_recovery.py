"""kill -9 a pool while it applies a peer's batches: after a restart its state is what a full
replay gives (nothing lost, nothing doubled, chains intact, views equal to a rebuild)."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from domain.context import CommandContext, recording
from domain.workers import Worker
from infrastructure.bootstrap import open_pool
from infrastructure.config import BootstrapConfig
from tests.e2e.admin_client import AdminClient
from tests.e2e.conftest import PoolProcess, shut_down
from tests.waiting import eventually

EVENTS = 30_000  # enough for a pull of many batches: the kill lands in the middle
PER_WORKER = 500


@pytest.fixture
def pools() -> Iterator[tuple[PoolProcess, PoolProcess]]:
    base = Path(tempfile.mkdtemp(prefix="archipel-crash-", dir="/tmp"))
    a, b = PoolProcess(base / "a"), PoolProcess(base / "b")
    try:
        yield a, b
    finally:
        shut_down(a)
        shut_down(b)
        shutil.rmtree(base, ignore_errors=True)


def scalar(url: str, sql: str, *params: object) -> object:
    with psycopg.connect(url) as conn:
        row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def record_many_events(a: PoolProcess) -> None:
    """Worker events recorded straight into A's store (the API would take minutes)."""
    pool = open_pool(
        BootstrapConfig(data_dir=a.data_dir, database_url=a.database_url(), redis_url=a.redis_url())
    )
    try:
        context = CommandContext(actor="cli:test", reason="crash test")
        for index in range(EVENTS // PER_WORKER):
            with recording(context, pool.pool_id):
                worker = Worker(
                    url=f"http://gpu-{index}.crash.example:11434",
                    name=f"gpu-{index}",
                    labels=["crash"],
                    capacity=1,
                )
                for i in range(PER_WORKER - 1):
                    worker.edit(f"gpu-{index}-{i % 3}", ["crash", f"rev-{i % 2}"], 1 + i % 4)
            pool.store.store(worker)
    finally:
        pool.close()


def test_kill_9_mid_apply_then_restart_equals_a_full_replay(
    pools: tuple[PoolProcess, PoolProcess],
) -> None:
    a, b = pools
    for pool in (a, b):
        pool.start()
    alice, bob = AdminClient(a.url), AdminClient(b.url)
    alice.onboard()
    bob.onboard()
    record_many_events(a)
    a_id = alice.get("/api/federation").json()["pool_id"]
    head = eventually(
        lambda: (
            (n := int(scalar(a.database_url(), "SELECT coalesce(max(seq), 0) FROM federation_log")))
            >= EVENTS
            and n
        ),
        timeout=120,
    )

    invite = bob.post("/api/federation/invites", {"reason": "crash test"}).json()
    paired = alice.post(
        "/api/federation/peers", {"url": b.url, "code": invite["code"], "reason": "r"}
    )
    assert paired.status_code == 201, paired.text

    def applied() -> int:
        return int(
            scalar(
                b.database_url(),
                "SELECT coalesce(max(seq), 0) FROM peer_positions WHERE origin = %s",
                a_id,
            )
            or 0
        )

    # B pulls A's log batch after batch; kill it hard in the middle.
    deadline = time.monotonic() + 60
    while not 0 < applied() < head - 5_000:
        assert time.monotonic() < deadline, f"B applied {applied()} of {head}"
        time.sleep(0.02)
    b.kill()
    interrupted_at = applied()
    assert 0 < interrupted_at < head

    b.start()
    eventually(lambda: applied() >= head, timeout=120)

    # Nothing lost, nothing doubled: every seq once, the same chain as A's log.
    with psycopg.connect(b.database_url()) as conn:
        count, low, high, distinct = conn.execute(
            "SELECT count(*), min(seq), max(seq), count(DISTINCT seq) FROM peer_log "
            "WHERE origin = %s",
            (a_id,),
        ).fetchone()
        b_head_hash = conn.execute(
            "SELECT head_hash FROM peer_positions WHERE origin = %s", (a_id,)
        ).fetchone()[0]
        b_workers = {
            (r[0], r[1], tuple(r[2]), r[3])
            for r in conn.execute(
                "SELECT url, name, labels, capacity FROM cluster_workers_view WHERE pool_id = %s",
                (a_id,),
            ).fetchall()
        }
    assert (count, low, high, distinct) == (head, 1, head, head)
    a_hash = scalar(a.database_url(), "SELECT hash FROM federation_log WHERE seq = %s", head)
    assert b_head_hash == a_hash
    # The cluster view B folded batch by batch, across the crash, is the workers' final state
    # as A's own read model has it (a fold of every event from the start).
    with psycopg.connect(a.database_url()) as conn:
        a_workers = {
            (r[0], r[1], tuple(r[2]), r[3])
            for r in conn.execute("SELECT url, name, labels, capacity FROM workers_view").fetchall()
        }
    assert b_workers == a_workers and len(a_workers) == EVENTS // PER_WORKER
    assert int(scalar(b.database_url(), "SELECT count(*) FROM rejected_batches") or 0) == 0

    # B's signed batches and chains check out, and its read models equal a rebuild.
    b.stop()
    verified = b.cli("audit", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    replayed = b.cli("audit", "replay")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
