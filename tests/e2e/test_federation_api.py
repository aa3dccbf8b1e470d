"""Two pools on loopback: pairing with an invite, signed replication, refused forgeries."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import nacl.signing
import psycopg
import pytest

from infrastructure.federation import b64, request_claim
from tests.e2e.admin_client import AdminClient
from tests.e2e.conftest import PoolProcess, shut_down
from tests.e2e.sim import SimProcess
from tests.e2e.test_models_api import upload
from tests.gguf_files import write_gguf
from tests.waiting import eventually

Pools = tuple[tuple[PoolProcess, AdminClient], tuple[PoolProcess, AdminClient]]


@pytest.fixture(scope="module")
def two_pools() -> Iterator[Pools]:
    base = Path(tempfile.mkdtemp(prefix="archipel-fed-", dir="/tmp"))
    pools = [PoolProcess(base / name) for name in ("a", "b")]
    admins = []
    try:
        for pool in pools:
            pool.start()
            admin = AdminClient(pool.url)
            admin.onboard()
            admins.append(admin)
        yield (pools[0], admins[0]), (pools[1], admins[1])
    finally:
        for pool in pools:
            shut_down(pool)
        shutil.rmtree(base, ignore_errors=True)


def test_pairing_replication_and_refusals(two_pools: Pools) -> None:
    (a, alice), (b, bob) = two_pools
    key = httpx.get(f"{b.url}/federation/v1/key").json()
    assert key["document"]["keys"][0]["key_id"] == "ed25519:1" and key["signature"]

    # B's admin makes an invite; A's admin pairs with B's URL and the code.
    invite = bob.post("/api/federation/invites", {"reason": "pair with paris"}).json()
    wrong = alice.post("/api/federation/peers", {"url": b.url, "code": "nope", "reason": "r"})
    assert wrong.status_code == 422 and "invite code" in wrong.json()["detail"]
    paired = alice.post(
        "/api/federation/peers", {"url": b.url, "code": invite["code"], "reason": "one cluster"}
    )
    assert paired.status_code == 201, paired.text
    b_id = paired.json()["pool_id"]
    a_id = alice.get("/api/federation").json()["pool_id"]
    assert [p["pool_id"] for p in bob.get("/api/federation").json()["peers"]] == [a_id]
    reused = alice.post(
        "/api/federation/peers", {"url": b.url, "code": invite["code"], "reason": "again"}
    )
    assert reused.status_code == 422  # already paired (and the code was used up)

    # A worker registered on A appears among B's cluster workers (signed batches, pulled).
    sim = SimProcess().start()
    try:
        alice.post("/api/workers", {"url": sim.urls[0], "name": "gpu-a-1", "reason": "r"})
        found = eventually(
            lambda: [
                w for w in bob.get("/api/cluster-workers").json()["items"] if w["name"] == "gpu-a-1"
            ],
            timeout=20,
        )
        assert found[0]["pool_id"] == a_id
        peer_a = eventually(
            lambda: [p for p in bob.get("/api/federation").json()["peers"] if p["applied_seq"] > 0],
            timeout=20,
        )[0]
        assert peer_a["lag_events"] == 0 and peer_a["rejected_batches"] == 0
        # Cluster-scope flags and catalog additions replicate too, without stalling anything.
        before = peer_a["applied_seq"]
        alice.put("/api/settings/cluster.failover_mode", {"value": "auto", "reason": "night"})
        eventually(
            lambda: [
                p
                for p in bob.get("/api/federation").json()["peers"]
                if p["applied_seq"] > before and p["rejected_batches"] == 0
            ],
            timeout=20,
        )
    finally:
        sim.stop()

    # Forgeries are refused: unsigned, signed by an unknown key, replayed, wrong destination.
    assert httpx.get(f"{a.url}/federation/v1/log").status_code == 401
    stranger = nacl.signing.SigningKey.generate()

    def signed(
        origin: str,
        destination: str,
        timestamp: int,
        key: nacl.signing.SigningKey,
        nonce: str = "ab" * 16,
    ) -> dict[str, str]:
        fields = {
            "origin": origin,
            "destination": destination,
            "timestamp": str(timestamp),
            "nonce": nonce,
        }
        claim = request_claim("GET", "/federation/v1/log?after=0", fields, b"")
        from domain.canonical import canonical

        signature = b64(key.sign(canonical("archipel/request/v1", claim)).signature)
        return {
            f"X-Archipel-{k.capitalize()}": v
            for k, v in {**fields, "key": "ed25519:1", "signature": signature}.items()
        }

    import time

    forged = httpx.get(
        f"{a.url}/federation/v1/log?after=0", headers=signed(b_id, a_id, int(time.time()), stranger)
    )
    assert forged.status_code == 401 and "bad signature" in forged.json()["detail"]
    unknown = httpx.get(
        f"{a.url}/federation/v1/log?after=0",
        headers=signed("some-other-pool", a_id, int(time.time()), stranger),
    )
    assert unknown.status_code == 401 and "unpaired" in unknown.json()["detail"]
    skewed = httpx.get(
        f"{a.url}/federation/v1/log?after=0",
        headers=signed(b_id, a_id, int(time.time()) - 600, stranger),
    )
    assert skewed.status_code == 401 and "skew" in skewed.json()["detail"]
    elsewhere = httpx.get(
        f"{a.url}/federation/v1/log?after=0",
        headers=signed(b_id, "another-pool", int(time.time()), stranger),
    )
    assert elsewhere.status_code == 401 and "another pool" in elsewhere.json()["detail"]

    # Unpairing from one side ends it on both.
    assert (
        alice.post(f"/api/federation/peers/{b_id}/unpair", {"reason": "split"}).status_code == 200
    )
    eventually(lambda: bob.get("/api/federation").json()["peers"][0]["status"] == "unpaired")


def test_a_stopped_pool_catches_up_with_nothing_lost_or_doubled(two_pools: Pools) -> None:
    (a, alice), (b, bob) = two_pools
    invite = alice.post("/api/federation/invites", {"reason": "again"}).json()
    assert (
        bob.post(
            "/api/federation/peers", {"url": a.url, "code": invite["code"], "reason": "pair back"}
        ).status_code
        == 201
    )
    # B is down while A changes things.
    assert b.stop() == 0
    sim = SimProcess(count=3).start()
    try:
        for index, url in enumerate(sim.urls):
            alice.post("/api/workers", {"url": url, "name": f"late-{index}", "reason": "r"})
        b.start()
        bob.login("alice@example.org")

        def late_workers() -> list[str]:
            items = bob.get("/api/cluster-workers").json()["items"]
            return sorted(w["name"] for w in items if w["name"].startswith("late-"))

        assert eventually(late_workers, timeout=30) == ["late-0", "late-1", "late-2"]
        with psycopg.connect(b.database_url()) as conn:
            seqs = [r[0] for r in conn.execute("SELECT seq FROM peer_log ORDER BY seq").fetchall()]
        assert seqs == list(range(1, len(seqs) + 1))  # contiguous: nothing lost or doubled
    finally:
        sim.stop()


def test_a_satellite_follows_the_master_catalog_and_fetches_its_files(
    two_pools: Pools, tmp_path: Path
) -> None:
    (a, alice), (b, bob) = two_pools
    a_id = alice.get("/api/federation").json()["pool_id"]
    for admin in (alice, bob):
        set_master = admin.put(
            "/api/settings/cluster.catalog_master_pool", {"value": a_id, "reason": "A leads"}
        )
        assert set_master.status_code == 200
    assert alice.get("/api/models").json()["catalog"]["role"] == "master"

    gguf = write_gguf(tmp_path / "shared.gguf", elements=200_000)
    added = upload(alice, gguf, "shared-model")
    assert added.status_code == 201, added.text
    model = added.json()["model"]

    # B shows the master's model (read-only there) and how far it follows the master.
    eventually(
        lambda: [m for m in bob.get("/api/models").json()["items"] if m["id"] == model["id"]],
        timeout=30,
    )
    state = eventually(
        lambda: (c := bob.get("/api/models").json()["catalog"])["lag_events"] == 0 and c
    )
    assert state["role"] == "satellite" and state["master_pool_id"] == a_id
    assert state["paired"] is True and state["master_models"] >= 1 and state["conflicts"] == []
    for refused in (
        bob.post("/api/models/library", {"name": "phi3", "tag": "mini", "reason": "r"}),
        bob.post("/api/models/uploads", {"filename": "x.gguf", "size": 10}),
        bob.send("PATCH", f"/api/models/{model['id']}", {"notes": "mine", "reason": "r"}),
    ):
        assert refused.status_code == 409 and refused.json()["code"] == "catalog_read_only"

    # An edit on the master reaches the satellite.
    edited = alice.send(
        "PATCH", f"/api/models/{model['id']}", {"notes": "approved by legal", "reason": "r"}
    )
    assert edited.status_code == 200, edited.text
    eventually(
        lambda: bob.get(f"/api/models/{model['id']}").json()["notes"] == "approved by legal",
        timeout=30,
    )

    # B deploys it on its own worker: the file comes from A over a signed request, and is
    # kept only because its sha256 is the one the catalog names.
    digest = model["digest"]
    assert httpx.get(f"{a.url}/federation/v1/blobs/{digest}").status_code == 401
    blob = b.data_dir / "blobs" / "sha256" / digest.removeprefix("sha256:")
    assert not blob.exists()
    sim = SimProcess().start()
    try:
        worker = bob.post("/api/workers", {"url": sim.urls[0], "name": "gpu-b", "reason": "r"})
        assert worker.status_code == 201, worker.text
        assigned = bob.post(
            f"/api/models/{model['id']}/assignments",
            {"worker_ids": [worker.json()["id"]], "reason": "serve it here too"},
        )
        assert assigned.status_code == 200, assigned.text
        eventually(
            lambda: [
                d
                for d in bob.get(f"/api/models/{model['id']}").json()["deployments"]
                if d["state"] == "deployed"
            ],
            timeout=60,
        )
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == digest.removeprefix("sha256:")
        assert "shared-model:latest" in [
            m["name"] for m in httpx.get(f"{sim.urls[0]}/api/tags").json()["models"]
        ]
    finally:
        sim.stop()
        for admin in (alice, bob):
            admin.put("/api/settings/cluster.catalog_master_pool", {"value": "", "reason": "r"})


def test_cluster_flags_converge_and_pool_flags_stay_home(two_pools: Pools) -> None:
    (_, alice), (_, bob) = two_pools
    a_id = alice.get("/api/federation").json()["pool_id"]
    key = "/api/settings/cluster.balancer_interval_seconds"
    assert alice.put(key, {"value": 90, "reason": "A's choice"}).status_code == 200
    adopted = eventually(lambda: (s := bob.get(key).json())["value"] == 90 and s, timeout=30)
    assert adopted["last_change"]["actor"] == f"peer:{a_id}"
    assert "A's choice" in adopted["last_change"]["reason"]
    # Two admins change it on both sides: the later change wins everywhere, and stays.
    alice.put(key, {"value": 100, "reason": "first"})
    bob.put(key, {"value": 75, "reason": "second"})
    for admin in (alice, bob):
        eventually(lambda admin=admin: admin.get(key).json()["value"] == 75, timeout=30)
    time.sleep(4)  # a replication round later, nothing flips back
    assert alice.get(key).json()["value"] == bob.get(key).json()["value"] == 75
    # A pool-local flag is sovereign: it never travels.
    alice.put("/api/settings/pool.maintenance_banner", {"value": "A only", "reason": "r"})
    time.sleep(4)
    assert bob.get("/api/settings/pool.maintenance_banner").json()["value"] == ""


def test_audit_verify_and_replay(two_pools: Pools) -> None:
    (a, _), (b, _) = two_pools
    for pool in (a, b):
        verified = pool.cli("audit", "verify")
        assert verified.returncode == 0, verified.stderr
        assert "chains and signatures intact" in verified.stdout
        replayed = pool.cli("audit", "replay")
        assert replayed.returncode == 0, replayed.stdout + replayed.stderr
        assert "differs" not in replayed.stdout and "identical" in replayed.stdout
    # Someone edits an accepted event in B's database: verify finds it and fails.
    with psycopg.connect(b.database_url(), autocommit=True) as conn:
        conn.execute(
            "UPDATE peer_log SET event = jsonb_set(event, '{payload,name}', '\"forged\"') "
            "WHERE seq = (SELECT min(seq) FROM peer_log)"
        )
    broken = b.cli("audit", "verify")
    assert broken.returncode == 1
    assert "hash mismatch at seq 1" in broken.stderr


def test_key_rotation_is_announced_and_replication_goes_on(two_pools: Pools) -> None:
    (a, alice), (_, bob) = two_pools
    rotated = alice.post("/api/federation/key/rotate", {"reason": "yearly rotation"})
    assert rotated.status_code == 200, rotated.text
    assert rotated.json()["key_id"] == "ed25519:2"
    document = httpx.get(f"{a.url}/federation/v1/key").json()["document"]
    assert [k["key_id"] for k in document["keys"]] == ["ed25519:2", "ed25519:1"]
    assert document["keys"][1]["valid_until"]  # the old key is listed with its expiry
    a_id = alice.get("/api/federation").json()["pool_id"]
    peer = eventually(
        lambda: [
            p
            for p in bob.get("/api/federation").json()["peers"]
            if p["pool_id"] == a_id and p["key_id"] == "ed25519:2"
        ]
    )[0]
    applied = peer["applied_seq"]
    sim = SimProcess().start()
    try:
        alice.post("/api/workers", {"url": sim.urls[0], "name": "after-rotation", "reason": "r"})
        eventually(
            lambda: [
                p
                for p in bob.get("/api/federation").json()["peers"]
                if p["pool_id"] == a_id and p["applied_seq"] > applied
            ],
            timeout=30,
        )
    finally:
        sim.stop()


def test_a_pool_down_during_two_rotations_follows_them_when_back(two_pools: Pools) -> None:
    (a, alice), (b, bob) = two_pools
    a_id = alice.get("/api/federation").json()["pool_id"]
    assert b.stop() == 0  # B misses both announcements
    for _ in range(2):
        assert alice.post("/api/federation/key/rotate", {"reason": "r"}).status_code == 200
    document = httpx.get(f"{a.url}/federation/v1/key").json()["document"]
    assert [r["announcement"]["new_key_id"] for r in document["rotations"]] == [
        "ed25519:2",
        "ed25519:3",
        "ed25519:4",
    ]
    alice.put("/api/settings/cluster.balancer_interval_seconds", {"value": 120, "reason": "r"})
    b.start()
    bob.login("alice@example.org")
    # B's first pull meets a batch signed with a key it never pinned: it walks A's signed
    # rotations from ed25519:2 to ed25519:4, repins, and applies the batch.
    peer = eventually(
        lambda: [
            p
            for p in bob.get("/api/federation").json()["peers"]
            if p["pool_id"] == a_id and p["key_id"] == "ed25519:4" and p["lag_events"] == 0
        ],
        timeout=40,
    )[0]
    assert peer["status"] == "paired"
    history = bob.get("/api/audit", params={"actor": f"peer:{a_id}"}).json()["items"]
    assert any(e["event_type"] == "KeyRepinned" and "ed25519:4" in e["reason"] for e in history)
