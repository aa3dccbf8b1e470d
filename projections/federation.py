"""The federation log: this pool's replicated-scope events, numbered per origin and chained.

`seq` is contiguous (assigned in the projection's transaction, which is serial per view) and
`hash_n = sha256(prefix || hash_(n-1) || canonical(event_n))`. Peers pull it in signed batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from domain.aggregate import event_topic
from domain.canonical import GENESIS, chain_hash, plain
from domain.federation import Peer
from projections.framework import ChangeNotice, ReadModel, RecordedEvent

FEDERATION_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS federation_log (
        seq bigint PRIMARY KEY,
        position bigint NOT NULL UNIQUE,
        event jsonb NOT NULL,
        hash text NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS peer_log (
        origin text NOT NULL,
        seq bigint NOT NULL,
        event jsonb NOT NULL,
        hash text NOT NULL,
        received_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (origin, seq))""",
    """CREATE TABLE IF NOT EXISTS peer_positions (
        origin text PRIMARY KEY,
        seq bigint NOT NULL,
        head_hash text NOT NULL,
        origin_head_seq bigint NOT NULL DEFAULT 0,
        last_seen_at timestamptz,
        last_batch_at timestamptz)""",
    # Accepted batches' signed headers, kept so `archipel audit verify` can re-check them.
    """CREATE TABLE IF NOT EXISTS peer_batches (
        origin text NOT NULL,
        last_seq bigint NOT NULL,
        header jsonb NOT NULL,
        signature text NOT NULL,
        PRIMARY KEY (origin, last_seq))""",
    """CREATE TABLE IF NOT EXISTS rejected_batches (
        id bigserial PRIMARY KEY,
        origin text NOT NULL,
        first_seq bigint,
        last_seq bigint,
        reason text NOT NULL,
        received_at timestamptz NOT NULL DEFAULT now(),
        body jsonb)""",
    """CREATE TABLE IF NOT EXISTS cluster_workers_view (
        pool_id text NOT NULL,
        worker_id text NOT NULL,
        name text NOT NULL,
        url text NOT NULL,
        labels jsonb NOT NULL,
        capacity integer NOT NULL,
        status text NOT NULL,
        status_reason text NOT NULL,
        drained boolean NOT NULL DEFAULT false,
        removed boolean NOT NULL DEFAULT false,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (pool_id, worker_id))""",
    # Each peer's catalog as its log tells it; satellites follow the master's rows.
    """CREATE TABLE IF NOT EXISTS cluster_catalog_view (
        pool_id text NOT NULL,
        model_id text NOT NULL,
        name text NOT NULL,
        tag text NOT NULL,
        digest text,
        size bigint NOT NULL,
        metadata jsonb NOT NULL,
        capabilities jsonb NOT NULL,
        notes text NOT NULL,
        source text NOT NULL,
        retired boolean NOT NULL DEFAULT false,
        seq bigint NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (pool_id, model_id))""",
)


def log_entry(event: RecordedEvent, seq: int) -> dict[str, Any]:
    """What a peer receives of one event (canonical-ready: no floats)."""
    entry: dict[str, Any] = plain(
        {
            "seq": seq,
            "event_id": event.meta.get("event_id"),
            "topic": event.topic,
            "type": f"{event.aggregate_type}.{event.event_type}",
            "aggregate_id": str(event.aggregate_id),
            "version": event.aggregate_version,
            "position": event.position,
            "meta": event.meta,
            "payload": event.payload,
        }
    )
    return entry


class FederationLogView(ReadModel):
    name = "federation_log"
    schema = FEDERATION_SCHEMA
    tables = ()  # the log is history itself: never emptied by a rebuild

    def __init__(self, own_pool: Callable[[], str], woken: Callable[[], None] | None = None):
        self._own_pool = own_pool
        self._woken = woken

    def apply(self, cur: psycopg.Cursor[Any], event: RecordedEvent) -> Iterable[ChangeNotice]:
        if event.meta.get("scope") != "replicated" or event.meta.get("origin_pool") != (
            self._own_pool()
        ):
            return ()
        last = cur.execute(
            "SELECT seq, hash FROM federation_log ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        seq = (last["seq"] if last else 0) + 1
        entry = log_entry(event, seq)
        hashed = chain_hash(last["hash"] if last else GENESIS, entry)
        cur.execute(
            "INSERT INTO federation_log (seq, position, event, hash) VALUES (%s, %s, %s, %s) "
            "ON CONFLICT (position) DO NOTHING",
            (seq, event.position, Jsonb(entry), hashed),
        )
        return [ChangeNotice(self.name, str(seq), event.position)]

    def after_commit(self, events: Sequence[RecordedEvent]) -> None:
        if self._woken is not None and any(e.meta.get("scope") == "replicated" for e in events):
            self._woken()


def log_rows(conn: Any, after: int, limit: int) -> list[dict[str, Any]]:
    return list(
        conn.execute(
            "SELECT seq, event, hash FROM federation_log WHERE seq > %s ORDER BY seq LIMIT %s",
            (after, limit),
        ).fetchall()
    )


def log_hash_at(conn: Any, seq: int) -> str | None:
    if seq == 0:
        return GENESIS
    row = conn.execute("SELECT hash FROM federation_log WHERE seq = %s", (seq,)).fetchone()
    return str(row["hash"]) if row else None


def log_head(conn: Any) -> int:
    row = conn.execute("SELECT coalesce(max(seq), 0) AS seq FROM federation_log").fetchone()
    return int(row["seq"]) if row else 0


class PeersView(ReadModel):
    """Paired pools as recorded here (status and pinned key); liveness lives in peer_positions."""

    name = "peers"
    topics = tuple(
        event_topic(Peer, name)
        for name in ("Paired", "PairedAgain", "Unpaired", "Quarantined", "Released", "KeyRepinned")
    )
    schema = (
        """CREATE TABLE IF NOT EXISTS peers_view_ids (
            aggregate_id uuid PRIMARY KEY,
            pool_id text NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS peers_view (
            pool_id text PRIMARY KEY,
            url text NOT NULL,
            name text NOT NULL,
            key_id text NOT NULL,
            status text NOT NULL,
            status_reason text NOT NULL,
            paired_at timestamptz NOT NULL,
            position bigint NOT NULL)""",
    )
    tables = ("peers_view",)
    _STATUS = {"Unpaired": "unpaired", "Quarantined": "quarantined", "Released": "paired"}

    def apply(self, cur: psycopg.Cursor[Any], event: RecordedEvent) -> Iterable[ChangeNotice]:
        p, at = event.payload, event.meta.get("occurred_at")
        kind = event.event_type
        if kind in ("Paired", "PairedAgain"):
            cur.execute(
                """INSERT INTO peers_view (pool_id, url, name, key_id, status, status_reason,
                     paired_at, position) VALUES (%s, %s, %s, %s, 'paired', 'paired', %s, %s)
                   ON CONFLICT (pool_id) DO UPDATE SET url = EXCLUDED.url, name = EXCLUDED.name,
                     key_id = EXCLUDED.key_id, status = 'paired', status_reason = 'paired',
                     paired_at = EXCLUDED.paired_at, position = EXCLUDED.position""",
                (
                    p.get("peer_pool_id") or self._pool_of(cur, event),
                    p["url"],
                    p["name"],
                    p["key_id"],
                    at,
                    event.position,
                ),
            )
        elif kind == "KeyRepinned":
            cur.execute(
                "UPDATE peers_view SET key_id = %s, position = %s WHERE pool_id = "
                "(SELECT pool_id FROM peers_view_ids WHERE aggregate_id = %s)",
                (p["key_id"], event.position, event.aggregate_id),
            )
        else:
            cur.execute(
                "UPDATE peers_view SET status = %s, status_reason = %s, position = %s "
                "WHERE pool_id = (SELECT pool_id FROM peers_view_ids WHERE aggregate_id = %s)",
                (
                    self._STATUS[kind],
                    p.get("reason") or kind.lower(),
                    event.position,
                    event.aggregate_id,
                ),
            )
        if kind == "Paired":
            cur.execute(
                "INSERT INTO peers_view_ids (aggregate_id, pool_id) VALUES (%s, %s) "
                "ON CONFLICT DO NOTHING",
                (event.aggregate_id, p["peer_pool_id"]),
            )
        return [ChangeNotice(self.name, str(event.aggregate_id), event.position)]

    @staticmethod
    def _pool_of(cur: psycopg.Cursor[Any], event: RecordedEvent) -> str:
        row = cur.execute(
            "SELECT pool_id FROM peers_view_ids WHERE aggregate_id = %s", (event.aggregate_id,)
        ).fetchone()
        return str(row["pool_id"]) if row else ""


def list_peers(conn: Any) -> list[dict[str, Any]]:
    return list(
        conn.execute(
            """SELECT p.*, pp.seq, pp.origin_head_seq, pp.last_seen_at, pp.last_batch_at,
                  (SELECT count(*) FROM rejected_batches r WHERE r.origin = p.pool_id)
                    AS rejected_batches
           FROM peers_view p LEFT JOIN peer_positions pp ON pp.origin = p.pool_id
           ORDER BY p.name, p.pool_id"""
        ).fetchall()
    )
