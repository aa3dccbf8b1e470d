"""`archipel audit verify` and the comparison behind `archipel audit replay`.

Verify re-checks what this pool holds: its own federation log's hash chain, and for every peer
the chain of the events it accepted and the signature of every accepted batch header.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from domain.canonical import GENESIS, chain_hash
from infrastructure.federation import FederationRefused, verify

if TYPE_CHECKING:
    from infrastructure.bootstrap import Pool


def _chain(
    rows: Iterator[dict[str, Any]], label: str, problems: list[str], tick: Callable[[], None]
) -> int:
    running, count, expected_seq = GENESIS, 0, 1
    for row in rows:
        if row["seq"] != expected_seq:
            problems.append(f"{label}: seq {row['seq']} where {expected_seq} was expected")
        running = chain_hash(running, row["event"])
        if running != row["hash"]:
            problems.append(f"{label}: hash mismatch at seq {row['seq']}")
            running = row["hash"]
        expected_seq = row["seq"] + 1
        count += 1
        tick()
    return count


def verify_pool(pool: Pool, tick: Callable[[], None] = lambda: None) -> tuple[int, list[str]]:
    """(items checked, problems found)."""
    problems: list[str] = []
    checked = 0
    with pool.database.connection() as conn:
        own = conn.execute("SELECT seq, event, hash FROM federation_log ORDER BY seq")
        checked += _chain(iter(own.fetchall()), "own log", problems, tick)
        origins = [
            r["origin"] for r in conn.execute("SELECT DISTINCT origin FROM peer_log").fetchall()
        ]
        for origin in origins:
            rows = conn.execute(
                "SELECT seq, event, hash FROM peer_log WHERE origin = %s ORDER BY seq", (origin,)
            ).fetchall()
            checked += _chain(iter(rows), f"peer {origin}", problems, tick)
            hashes = {r["seq"]: r["hash"] for r in rows}
            peer = pool.federation.find(origin)
            for batch in conn.execute(
                "SELECT header, signature FROM peer_batches WHERE origin = %s ORDER BY last_seq",
                (origin,),
            ).fetchall():
                header = batch["header"]
                try:
                    if peer is None:
                        raise FederationRefused("no pinned key for this origin")
                    verify(peer.public_key, "archipel/batch/v1", header, batch["signature"])
                except FederationRefused as error:
                    problems.append(f"peer {origin}: batch up to {header['last_seq']}: {error}")
                if hashes.get(header["last_seq"]) != header["head_hash"]:
                    problems.append(
                        f"peer {origin}: batch up to {header['last_seq']} does not match the "
                        "stored chain"
                    )
                checked += 1
                tick()
    return checked, problems


def table_checksum(conn: Any, table: str) -> str:
    row = conn.execute(
        f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) AS sum FROM {table} t"
    ).fetchone()
    return str(row["sum"])
