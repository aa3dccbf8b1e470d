"""Replication between paired pools: the pairing transport, serving the log, pulling batches.

Inbound pipeline, in this order: schema -> signature -> chain continuity -> authorisation ->
store the events and the high-water mark in one transaction (with the cluster views they feed).
A batch failing any step is stored as rejected with its reason, applies nothing, and opens an
incident; a batch that contradicts history we already hold (a broken chain at our high-water
mark) is equivocation, and quarantines the peer.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from psycopg.types.json import Jsonb

from application.federation import PeerIdentity, may_send
from application.incidents import Trouble
from domain.canonical import GENESIS, chain_hash
from domain.context import CommandContext
from domain.federation import PairingRefused
from domain.incidents import IncidentKind
from domain.notifications import Severity
from infrastructure.federation import (
    FederationRefused,
    PeerClient,
    PeerUnreachable,
    PoolSigner,
    check_batch,
    check_key_document,
    current_key,
    follow_rotations,
    sign_batch,
)
from projections.federation import log_hash_at, log_head, log_rows
from projections.framework import NOTICE_CHANNEL

if TYPE_CHECKING:
    from infrastructure.bootstrap import Pool

log = logging.getLogger(__name__)
BATCH_LIMIT = 500
BACKOFF = "archipel:replication:backoff:"


def identity_from(signed_document: dict[str, Any]) -> PeerIdentity:
    document = check_key_document(signed_document)
    key_id, public_key = current_key(document)
    return PeerIdentity(
        str(document["pool_id"]),
        str(document.get("url", "")),
        str(document.get("name", "")),
        key_id,
        public_key,
    )


class HttpPeerTransport:
    def __init__(self, client: PeerClient, own_document: Any) -> None:
        self._client = client
        self._own_document = own_document  # () -> our signed key document

    def fetch_identity(self, url: str) -> PeerIdentity:
        try:
            identity = identity_from(self._client.key_document(url))
        except FederationRefused as error:
            raise PairingRefused(str(error)) from None
        return PeerIdentity(
            identity.pool_id, url, identity.name, identity.key_id, identity.public_key
        )

    def request_pairing(self, peer: PeerIdentity, code: str) -> PeerIdentity:
        try:
            answer = self._client.call(
                peer.url,
                peer.pool_id,
                "POST",
                "/federation/v1/pair",
                {"code": code, "key_document": self._own_document()},
            )
        except FederationRefused as error:
            raise PairingRefused(str(error)) from None
        if answer.status_code != 200:
            detail = answer.json().get("detail", answer.text) if answer.content else ""
            raise PairingRefused(f"the other pool refused: {detail}")
        try:
            return identity_from(answer.json())
        except FederationRefused as error:
            raise PairingRefused(str(error)) from None

    def tell_unpaired(self, peer: PeerIdentity) -> None:
        self._client.call(peer.url, peer.pool_id, "POST", "/federation/v1/unpair", {})


def serve_log(
    pool: Pool, signer: PoolSigner, destination: str, after: int, limit: int
) -> dict[str, Any]:
    with pool.database.connection() as conn:
        prev = log_hash_at(conn, after)
        if prev is None:
            raise FederationRefused(f"no event {after} in this log")
        rows = log_rows(conn, after, min(max(limit, 1), BATCH_LIMIT))
        head = log_head(conn)
    return sign_batch(signer, destination, [dict(r) for r in rows], prev, head)


def pull(pool: Pool, peer_pool_id: str) -> int:
    """Fetch and apply what the peer has for us; returns how many events were applied."""
    peer = pool.federation.find(peer_pool_id)
    if peer is None or str(peer.status) != "paired":
        return 0
    applied = 0
    while True:
        with pool.database.connection() as conn:
            mark = conn.execute(
                "SELECT seq, head_hash FROM peer_positions WHERE origin = %s", (peer_pool_id,)
            ).fetchone()
        after, known = (int(mark["seq"]), str(mark["head_hash"])) if mark else (0, GENESIS)
        answer = pool.peer_client.call(
            peer.url, peer_pool_id, "GET", f"/federation/v1/log?after={after}&limit={BATCH_LIMIT}"
        )
        if answer.status_code >= 500:
            raise PeerUnreachable(f"{peer.url} answered HTTP {answer.status_code}")
        if answer.status_code != 200:
            raise FederationRefused(f"{peer.url} refused: HTTP {answer.status_code}")
        try:
            body = answer.json()
        except ValueError:
            body = None
        header = body.get("header") if isinstance(body, dict) else None
        signed_with = header.get("key_id") if isinstance(header, dict) else None
        if signed_with and signed_with != peer.key_id and caught_up_rotation(pool, peer):
            peer = pool.federation.get(peer_pool_id)  # repinned: check with the new key
        try:
            batch = check_batch(body, peer_pool_id, pool.pool_id, peer.public_key, after, known)
            refused = [e.get("type") for e in batch.events if not may_send(str(e.get("type")))]
            if refused:
                raise FederationRefused(
                    f"authorisation: {peer_pool_id} may not send {', '.join(map(str, refused))}"
                )
        except FederationRefused as error:
            reject(pool, peer_pool_id, body, str(error), after)
            raise
        # Flags first: adopting is idempotent (by stamp), so a crash before the batch commits
        # replays both, while adopting after could lose the flags for good.
        adopt_cluster_flags(pool, peer_pool_id, batch.events)
        count = apply_batch(
            pool, peer_pool_id, batch.header, batch.events, batch.signature, batch.hashes
        )
        pool.redis.delete(f"{BACKOFF}{peer_pool_id}:next")
        applied += count
        pool.redis.publish(
            NOTICE_CHANNEL,
            json.dumps([{"view": "replication", "key": peer_pool_id, "position": 0}]),
        )
        if count < BATCH_LIMIT:
            return applied


def adopt_cluster_flags(pool: Pool, origin: str, events: list[dict[str, Any]]) -> int:
    """Cluster flags changed on the peer (or adopted there from another pool) apply here when
    newer: last writer wins on (changed_at, pool where it was changed), so all pools converge
    and an adopted change, logged again here, is not taken back by the pool it came from."""
    adopted = 0
    for event in events:
        meta, payload = event.get("meta") or {}, event.get("payload") or {}
        if event.get("type") != "FlagSet.FlagChanged" or meta.get("scope") != "replicated":
            continue
        stamp = (
            str(payload.get("changed_at") or meta.get("occurred_at") or ""),
            str(payload.get("changed_in") or meta.get("origin_pool") or origin),
        )
        context = CommandContext(
            actor=f"peer:{origin}",
            reason=f"cluster flag changed on {stamp[1]}: {meta.get('reason') or 'no reason'}"[
                :2000
            ],
        )
        adopted += pool.settings.adopt(
            str(payload.get("key")), payload.get("new_value"), stamp, context
        )
    return adopted


def caught_up_rotation(pool: Pool, peer: Any) -> bool:
    """The peer signs with a key we did not pin: it rotated while we did not hear. Follow its
    signed rotations from the key we pinned; repin if they lead to its current key."""
    try:
        document = check_key_document(pool.peer_client.key_document(peer.url))
    except FederationRefused as error:
        log.warning("key document of %s: %s", peer.peer_pool_id, error)
        return False
    found = follow_rotations(document, peer.peer_pool_id, peer.key_id, peer.public_key)
    if found is None or found[0] == peer.key_id:
        return False
    pool.federation.repin(peer.peer_pool_id, *found)
    log.info("followed the key rotation of %s to %s", peer.peer_pool_id, found[0])
    return True


def apply_batch(
    pool: Pool,
    origin: str,
    header: dict[str, Any],
    events: list[dict[str, Any]],
    signature: str = "",
    hashes: list[str] | None = None,
) -> int:
    """Events, high-water mark and the cluster views they feed, in one transaction.

    One COPY for the events and one upsert per touched worker: per-event statements capped
    replication near 5,000 events/s (see bench/replication.py)."""
    with pool.database.connection() as conn:
        mark = conn.execute(
            "SELECT head_hash FROM peer_positions WHERE origin = %s FOR UPDATE", (origin,)
        ).fetchone()
        running = str(mark["head_hash"]) if mark else GENESIS
        if running != header["prev_hash"]:
            return 0  # another process applied it first
        if hashes is None:
            hashes = []
            for event in events:
                running = chain_hash(running, event)
                hashes.append(running)
        if events:
            running = hashes[-1]
            with (
                conn.cursor() as cur,
                cur.copy("COPY peer_log (origin, seq, event, hash) FROM STDIN") as copy,
            ):
                for event, hashed in zip(events, hashes, strict=True):
                    copy.write_row((origin, event["seq"], json.dumps(event), hashed))
            fold_cluster_workers(conn, origin, events)
            fold_cluster_catalog(conn, origin, events)
            conn.execute(
                "INSERT INTO peer_batches (origin, last_seq, header, signature) "
                "VALUES (%s, %s, %s, %s)",
                (origin, header["last_seq"], Jsonb(header), signature),
            )
        conn.execute(
            """INSERT INTO peer_positions (origin, seq, head_hash, origin_head_seq, last_seen_at,
                 last_batch_at) VALUES (%s, %s, %s, %s, now(), now())
               ON CONFLICT (origin) DO UPDATE SET seq = EXCLUDED.seq,
                 head_hash = EXCLUDED.head_hash, origin_head_seq = EXCLUDED.origin_head_seq,
                 last_seen_at = now(),
                 last_batch_at = CASE WHEN %s > 0 THEN now() ELSE peer_positions.last_batch_at
                                 END""",
            (
                origin,
                header["last_seq"] if events else _seq_of(conn, origin),
                running,
                header["origin_head_seq"],
                len(events),
            ),
        )
    return len(events)


def _seq_of(conn: Any, origin: str) -> int:
    row = conn.execute("SELECT seq FROM peer_positions WHERE origin = %s", (origin,)).fetchone()
    return int(row["seq"]) if row else 0


_WORKER_COLUMNS = (
    "name",
    "url",
    "labels",
    "capacity",
    "status",
    "status_reason",
    "drained",
    "removed",
)


def fold_cluster_workers(conn: Any, origin: str, events: list[dict[str, Any]]) -> None:
    """The cluster-wide view of workers, fed by each peer's verified log: each worker's events
    of the batch folded in order, then one upsert per worker."""
    worker_events = [e for e in events if str(e.get("type", "")).startswith("Worker.")]
    if not worker_events:
        return
    ids = list(dict.fromkeys(str(e.get("aggregate_id")) for e in worker_events))
    rows = conn.execute(
        "SELECT * FROM cluster_workers_view WHERE pool_id = %s AND worker_id = ANY(%s)",
        (origin, ids),
    ).fetchall()
    state: dict[str, dict[str, Any]] = {
        str(r["worker_id"]): {c: r[c] for c in _WORKER_COLUMNS} for r in rows
    }
    for event in worker_events:
        worker_id, payload = str(event.get("aggregate_id")), event.get("payload") or {}
        kind = str(event["type"]).split(".", 1)[1]
        current = state.get(worker_id)
        if kind in ("Registered", "RegisteredAgain"):
            state[worker_id] = {
                "name": payload.get("name", ""),
                "url": payload.get("url") or (current or {}).get("url", ""),
                "labels": payload.get("labels", []),
                "capacity": payload.get("capacity", 1),
                "status": "unknown",
                "status_reason": "not checked yet",
                "drained": False,
                "removed": False,
            }
        elif current is None:
            continue  # events of a worker whose registration we never saw
        elif kind == "Edited":
            current.update(
                name=payload["name"], labels=payload["labels"], capacity=payload["capacity"]
            )
        elif kind == "StatusChanged":
            current.update(status=payload["status"], status_reason=payload["reason"])
        elif kind in ("Drained", "Undrained"):
            current["drained"] = kind == "Drained"
        elif kind == "Removed":
            current["removed"] = True
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO cluster_workers_view (pool_id, worker_id, name, url, labels, capacity,
                 status, status_reason, drained, removed, updated_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now())
               ON CONFLICT (pool_id, worker_id) DO UPDATE SET name = EXCLUDED.name,
                 url = EXCLUDED.url, labels = EXCLUDED.labels, capacity = EXCLUDED.capacity,
                 status = EXCLUDED.status, status_reason = EXCLUDED.status_reason,
                 drained = EXCLUDED.drained, removed = EXCLUDED.removed, updated_at = now()""",
            [
                (
                    origin,
                    worker_id,
                    s["name"],
                    s["url"],
                    Jsonb(list(s["labels"])),
                    s["capacity"],
                    s["status"],
                    s["status_reason"],
                    s["drained"],
                    s["removed"],
                )
                for worker_id, s in state.items()
                if worker_id in ids
            ],
        )


def fold_cluster_catalog(conn: Any, origin: str, events: list[dict[str, Any]]) -> None:
    """Each peer's catalog (definitions only: its deployments are its own business)."""
    for event in events:
        kind = str(event.get("type", ""))
        if kind not in ("CatalogModel.Added", "CatalogModel.Updated", "CatalogModel.Retired"):
            continue
        model_id, p, seq = str(event.get("aggregate_id")), event.get("payload") or {}, event["seq"]
        if kind == "CatalogModel.Added":
            conn.execute(
                """INSERT INTO cluster_catalog_view (pool_id, model_id, name, tag, digest, size,
                     metadata, capabilities, notes, source, seq)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                   ON CONFLICT (pool_id, model_id) DO NOTHING""",
                (
                    origin,
                    model_id,
                    p.get("name", ""),
                    p.get("tag", ""),
                    p.get("digest"),
                    int(p.get("size") or 0),
                    Jsonb(p.get("metadata") or {}),
                    Jsonb(p.get("capabilities") or []),
                    p.get("notes", ""),
                    p.get("source", "upload"),
                    seq,
                ),
            )
        elif kind == "CatalogModel.Updated":
            conn.execute(
                """UPDATE cluster_catalog_view SET capabilities = %s, notes = %s, seq = %s,
                     updated_at = now() WHERE pool_id = %s AND model_id = %s""",
                (Jsonb(p.get("capabilities") or []), p.get("notes", ""), seq, origin, model_id),
            )
        else:
            conn.execute(
                """UPDATE cluster_catalog_view SET retired = true, seq = %s, updated_at = now()
                   WHERE pool_id = %s AND model_id = %s""",
                (seq, origin, model_id),
            )


def backing_off(pool: Pool, origin: str) -> bool:
    return bool(pool.redis.exists(f"{BACKOFF}{origin}"))


def reject(pool: Pool, origin: str, body: Any, reason: str, after: int) -> None:
    """Keep the refused batch and why; open an incident; quarantine on equivocation.

    The same refusal again (the peer serves the same bad batch) is not recorded twice; pulls
    from that peer back off, doubling from 2 s to 5 minutes, until a batch goes through.
    """
    header = body.get("header", {}) if isinstance(body, dict) else {}
    wait = min(int(pool.redis.get(f"{BACKOFF}{origin}:next") or 2), 300)
    pool.redis.set(f"{BACKOFF}{origin}", "1", ex=wait)
    pool.redis.set(f"{BACKOFF}{origin}:next", str(wait * 2), ex=3600)
    with pool.database.connection() as conn:
        last = conn.execute(
            "SELECT first_seq, reason FROM rejected_batches WHERE origin = %s "
            "ORDER BY id DESC LIMIT 1",
            (origin,),
        ).fetchone()
        if last is not None and (last["first_seq"], last["reason"]) == (
            _int(header.get("first_seq")),
            reason,
        ):
            return
        conn.execute(
            "INSERT INTO rejected_batches (origin, first_seq, last_seq, reason, body) "
            "VALUES (%s, %s, %s, %s, %s)",
            (
                origin,
                _int(header.get("first_seq")),
                _int(header.get("last_seq")),
                reason,
                Jsonb(body if isinstance(body, dict | list) else {"raw": str(body)[:10000]}),
            ),
        )
    pool.incidents.report(
        Trouble(
            cause=f"batch_rejected:{origin}",
            kind=IncidentKind.BATCH_REJECTED,
            severity=Severity.WARNING,
            title=f"A batch from pool {origin} was rejected",
            detail=reason,
            subject=f"peer:{origin}",
        ),
        CommandContext(actor="automation:replication", reason=reason[:2000]),
    )
    log.warning("rejected a batch from %s after seq %d: %s", origin, after, reason)
    if reason.startswith("chain: the batch does not continue") and pool.federation.quarantine(
        origin, f"equivocation: {reason}"
    ):
        pool.incidents.report(
            Trouble(
                cause=f"peer_quarantined:{origin}",
                kind=IncidentKind.PEER_QUARANTINED,
                severity=Severity.CRITICAL,
                title=f"Pool {origin} is quarantined",
                detail=f"It served two different histories (equivocation): {reason}. Nothing "
                "from it is applied until an admin releases it on the Federation page.",
                subject=f"peer:{origin}",
            ),
            CommandContext(actor="automation:replication", reason="equivocation"),
        )


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
