"""Auto-purge: a peer unseen for longer than the threshold is unpaired by automation:purge."""

from __future__ import annotations

from application.federation import PeerIdentity
from domain.context import CommandContext, recording
from domain.federation import Peer
from infrastructure.automations import purge_inactive_peers
from infrastructure.bootstrap import Pool

ADMIN = CommandContext(actor="admin:alice", reason="tidy the mesh")


def pair_directly(pool: Pool, pool_id: str) -> None:
    identity = PeerIdentity(pool_id, f"http://127.0.0.1:9/{pool_id}", pool_id, "ed25519:1", "k")
    with recording(ADMIN, pool.pool_id):
        pool.store.store(
            Peer(
                peer_pool_id=identity.pool_id,
                url=identity.url,
                name=identity.name,
                key_id=identity.key_id,
                public_key=identity.public_key,
                initiated_here=True,
            )
        )
    pool.runner("peers").catch_up()


def test_only_peers_silent_beyond_the_threshold_are_purged(pool: Pool) -> None:
    pair_directly(pool, "pool-old")
    pair_directly(pool, "pool-fresh")
    with pool.database.connection() as conn:
        conn.execute(
            "UPDATE peers_view SET paired_at = now() - interval '100 hours' "
            "WHERE pool_id = 'pool-old'"
        )
        conn.execute(
            "INSERT INTO peer_positions (origin, seq, head_hash, last_seen_at) "
            "VALUES ('pool-fresh', 0, 'x', now())"
        )
    assert purge_inactive_peers(pool) == []  # the flag is off by default

    pool.settings.set_flag("federation.auto_purge_inactive_peers", True, ADMIN)
    assert purge_inactive_peers(pool) == ["pool-old"]
    old = pool.federation.get("pool-old")
    assert str(old.status) == "unpaired"
    assert str(pool.federation.get("pool-fresh").status) == "paired"
    pool.runner("audit").catch_up()
    with pool.database.connection() as conn:
        entry = conn.execute(
            "SELECT actor, reason FROM audit_log WHERE event_type = 'Unpaired'"
        ).fetchone()
    assert entry["actor"] == "automation:purge" and "threshold 72 h" in entry["reason"]
