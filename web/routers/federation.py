"""Federation: the admin's side (/api/federation, /api/cluster-workers) and the pool-to-pool
protocol (/federation/v1), where every request but the key document is signed."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse

from application.federation import PeerIdentity
from domain.context import CommandContext
from domain.errors import NotFound
from domain.federation import PairingRefused
from infrastructure.federation import (
    FederationRefused,
    check_rotation,
    check_signed_request,
    read_signed_headers,
)
from infrastructure.replication import identity_from, serve_log
from projections.federation import list_peers
from web.deps import CurrentAdmin, Web, pool_identity
from web.routers.workers import all_workers
from web.schemas import (
    ClusterWorkerPublic,
    ClusterWorkersPublic,
    FederationPublic,
    InviteCreate,
    InvitePublic,
    PairingCreate,
    PeerPublic,
    Reasoned,
)

router = APIRouter(prefix="/api/federation", tags=["federation"])
cluster_router = APIRouter(prefix="/api/cluster-workers", tags=["federation"])
protocol = APIRouter(prefix="/federation/v1", tags=["pool-to-pool"])


def refused(why: str, status: int = 401) -> JSONResponse:
    return JSONResponse({"detail": why, "code": "federation_refused"}, status_code=status)


def _peers(web: Web) -> list[PeerPublic]:
    web.pool.runner("peers").catch_up()
    with web.pool.database.connection() as conn:
        rows = list_peers(conn)
    now = datetime.now(UTC)
    return [
        PeerPublic(
            pool_id=r["pool_id"],
            name=r["name"],
            url=r["url"],
            key_id=r["key_id"],
            status=r["status"],
            status_reason=r["status_reason"],
            paired_at=r["paired_at"],
            applied_seq=r["seq"] or 0,
            lag_events=max(0, (r["origin_head_seq"] or 0) - (r["seq"] or 0)),
            last_seen_at=r["last_seen_at"],
            lag_seconds=(now - r["last_seen_at"]).total_seconds() if r["last_seen_at"] else None,
            rejected_batches=r["rejected_batches"],
        )
        for r in rows
    ]


@router.get("", operation_id="get_federation", response_model=FederationPublic)
def federation(*, current: CurrentAdmin, web: Web) -> FederationPublic:
    """This pool's identity and its peers: status, pinned key, lag, rejected batches."""
    signer = web.pool.signer
    return FederationPublic(
        pool_id=web.pool.pool_id,
        key_id=signer.key_id if signer.ready else None,
        public_key=signer.public_key() if signer.ready else None,
        peers=_peers(web),
    )


@router.post("/invites", operation_id="create_invite", response_model=InvitePublic, status_code=201)
def create_invite(*, body: InviteCreate, current: CurrentAdmin, web: Web) -> InvitePublic:
    """A one-time code (valid 24 h) another pool's admin enters to pair with this pool."""
    code, expires = web.pool.federation.issue_invite(current.context(body.reason))
    return InvitePublic(code=code, expires_at=datetime.fromtimestamp(expires, UTC))


@router.post("/peers", operation_id="pair_with_pool", response_model=PeerPublic, status_code=201)
def pair(*, body: PairingCreate, current: CurrentAdmin, web: Web) -> PeerPublic:
    """Pair with the pool at `url` using the invite code its admin gave you."""
    peer = web.pool.federation.pair_with(body.url, body.code, current.context(body.reason))
    return next(p for p in _peers(web) if p.pool_id == peer.peer_pool_id)


@router.post("/key/rotate", operation_id="rotate_key", response_model=FederationPublic)
def rotate_key(*, body: Reasoned, current: CurrentAdmin, web: Web) -> FederationPublic:
    """A new identity key; the old one stays listed for 7 days, and every paired pool is sent
    the rotation, signed by both keys."""
    until = (datetime.now(UTC) + timedelta(days=7)).isoformat()
    announcement = web.pool.signer.rotate(until)
    new = announcement["announcement"]
    web.pool.onboarding.record_rotation(
        new["new_key_id"], new["new_public_key"], current.context(body.reason)
    )
    for peer in _peers(web):
        if peer.status == "paired":
            with contextlib.suppress(FederationRefused):
                web.pool.peer_client.call(
                    peer.url, peer.pool_id, "POST", "/federation/v1/key-rotation", announcement
                )
    return federation(current=current, web=web)


@router.post("/peers/{pool_id}/unpair", operation_id="unpair_pool", response_model=PeerPublic)
def unpair(*, pool_id: str, body: Reasoned, current: CurrentAdmin, web: Web) -> PeerPublic:
    """End the pairing on both sides (the other pool is told when it can be reached)."""
    web.pool.federation.unpair(pool_id, current.context(body.reason))
    return next(p for p in _peers(web) if p.pool_id == pool_id)


@router.post("/peers/{pool_id}/release", operation_id="release_pool", response_model=PeerPublic)
def release(*, pool_id: str, body: Reasoned, current: CurrentAdmin, web: Web) -> PeerPublic:
    """Take a quarantined peer back (after inspecting its rejected batches)."""
    web.pool.federation.release(pool_id, current.context(body.reason))
    return next(p for p in _peers(web) if p.pool_id == pool_id)


@cluster_router.get("", operation_id="list_cluster_workers", response_model=ClusterWorkersPublic)
def cluster_workers(*, current: CurrentAdmin, web: Web) -> ClusterWorkersPublic:
    """Workers of this pool and of every paired pool (from their verified logs)."""
    me = pool_identity(web)
    items = [
        ClusterWorkerPublic(
            pool_id=me.id,
            pool_name=me.name,
            worker_id=w.id,
            name=w.name,
            url=w.url,
            labels=w.labels,
            capacity=w.capacity,
            status=w.status,
            status_reason=w.status_reason,
            drained=w.drained,
        )
        for w in all_workers(web)
    ]
    with web.pool.database.connection() as conn:
        rows = conn.execute(
            """SELECT c.*, coalesce(p.name, c.pool_id) AS pool_name FROM cluster_workers_view c
               JOIN peers_view p ON p.pool_id = c.pool_id AND p.status <> 'unpaired'
               WHERE NOT c.removed ORDER BY pool_name, c.name"""
        ).fetchall()
    items += [
        ClusterWorkerPublic(
            pool_id=r["pool_id"],
            pool_name=r["pool_name"],
            worker_id=r["worker_id"],
            name=r["name"],
            url=r["url"],
            labels=list(r["labels"]),
            capacity=r["capacity"],
            status=r["status"],
            status_reason=r["status_reason"],
            drained=r["drained"],
        )
        for r in rows
    ]
    return ClusterWorkersPublic(items=items)


# --- pool to pool -----------------------------------------------------------------------------


@protocol.get("/key", operation_id="key_document")
def key_document(*, web: Web) -> Any:
    """This pool's self-signed key document (current key, and old keys with their expiry)."""
    profile = web.pool.onboarding.profile()
    if not web.pool.signer.ready:
        return refused("this pool has no identity yet", 404)
    return web.pool.signer.key_document(web.public_url(), str(profile.get("pool_name", "")))


async def _verified(request: Request, web: Web, public_key: str | None = None) -> Any:
    """The signed request's fields and body, after every check (or a FederationRefused)."""

    fields = read_signed_headers(request.headers)
    body = await request.body()
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if public_key is None:
        peer = await asyncio.to_thread(web.pool.federation.find, fields["origin"])
        if peer is None or str(peer.status) != "paired":
            raise FederationRefused("unknown or unpaired origin")
        public_key = peer.public_key
    check_signed_request(
        fields, request.method, path, body, web.pool.pool_id, public_key, web.pool.redis
    )
    return fields, body


@protocol.post("/pair", operation_id="pairing_request")
async def pairing_request(*, request: Request, web: Web) -> Any:
    """Another pool asks to pair: its key document, signed request and our invite code."""

    try:
        raw = json.loads(await request.body() or b"{}")
        requester = identity_from(raw.get("key_document") or {})
        await _verified(request, web, public_key=requester.public_key)
        if read_signed_headers(request.headers)["origin"] != requester.pool_id:
            raise FederationRefused("the request's origin is not the key document's pool")
        await asyncio.to_thread(
            web.pool.federation.accept_pairing,
            PeerIdentity(
                requester.pool_id,
                requester.url,
                requester.name,
                requester.key_id,
                requester.public_key,
            ),
            str(raw.get("code", "")),
        )
    except FederationRefused as error:
        return refused(str(error))
    except ValueError:
        return refused("malformed pairing request", 400)
    profile = web.pool.onboarding.profile()
    return web.pool.signer.key_document(web.public_url(), str(profile.get("pool_name", "")))


@protocol.post("/unpair", operation_id="unpair_request")
async def unpair_request(*, request: Request, web: Web) -> Any:
    """A paired pool ends the pairing."""

    try:
        fields, _ = await _verified(request, web)
    except FederationRefused as error:
        return refused(str(error))
    context = CommandContext(actor=f"peer:{fields['origin']}", reason="unpaired by the peer")
    await asyncio.to_thread(web.pool.federation.unpair, fields["origin"], context, False)
    return {"status": "unpaired"}


@protocol.get("/log", operation_id="federation_log")
async def federation_log(
    *,
    request: Request,
    web: Web,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 500,
) -> Any:
    """Our replicated events after `after`, as one signed batch."""

    try:
        fields, _ = await _verified(request, web)
        return await asyncio.to_thread(
            serve_log, web.pool, web.pool.signer, fields["origin"], after, limit
        )
    except FederationRefused as error:
        return refused(str(error))


@protocol.post("/introductions", operation_id="introduction_request")
async def introduction_request(*, request: Request, web: Web) -> Any:
    """A paired pool vouches for another pool it is paired with: issue it an invite code."""
    try:
        fields, body = await _verified(request, web)
        if not web.pool.settings.bool_value("federation.auto_pairing"):
            return refused("auto-pairing is off on this pool", 403)
        for_pool = str(json.loads(body or b"{}").get("for_pool", ""))
        code = await asyncio.to_thread(
            web.pool.federation.introduction_code, for_pool, fields["origin"]
        )
    except FederationRefused as error:
        return refused(str(error))
    except PairingRefused as error:
        return refused(str(error), 409)
    return {"code": code}


@protocol.post("/introduce", operation_id="introduction")
async def introduction(*, request: Request, web: Web) -> Any:
    """A paired pool introduces another: pair with it using the code it issued for us."""
    try:
        fields, body = await _verified(request, web)
        if not web.pool.settings.bool_value("federation.auto_pairing"):
            return refused("auto-pairing is off on this pool", 403)
        offer = json.loads(body or b"{}")
        context = CommandContext(
            actor="automation:auto-pairing",
            reason=f"introduced by {fields['origin']}",
        )
        await asyncio.to_thread(
            web.pool.federation.pair_with,
            str(offer.get("url", "")),
            str(offer.get("code", "")),
            context,
        )
    except FederationRefused as error:
        return refused(str(error))
    except PairingRefused as error:
        return refused(str(error), 409)
    return {"status": "paired"}


@protocol.post("/key-rotation", operation_id="key_rotation")
async def key_rotation(*, request: Request, web: Web) -> Any:
    """A paired pool rotated its key: the announcement must carry the signature of the key we
    pinned and of the new one (replaying it changes nothing)."""
    origin = request.headers.get("x-archipel-origin", "")
    try:
        peer = await asyncio.to_thread(web.pool.federation.find, origin)
        if peer is None or str(peer.status) == "unpaired":
            raise FederationRefused("unknown or unpaired origin")
        key_id, public_key = check_rotation(
            json.loads(await request.body() or b"{}"), origin, peer.public_key
        )
        if key_id != peer.key_id:
            await asyncio.to_thread(web.pool.federation.repin, origin, key_id, public_key)
    except FederationRefused as error:
        return refused(str(error))
    except ValueError:
        return refused("malformed key rotation", 400)
    return {"status": "repinned", "key_id": key_id}


@protocol.post("/notify", operation_id="federation_notify")
async def notify(*, request: Request, web: Web) -> Any:
    """A paired pool says it has news: pull from it now."""
    try:
        fields, _ = await _verified(request, web)
    except FederationRefused as error:
        return refused(str(error))
    web.pool.background.enqueue("pull_peers", {"peers": [fields["origin"]]})
    return {"status": "pulling"}


@protocol.get("/blobs/{digest}", operation_id="federation_blob")
async def blob(*, digest: str, request: Request, web: Web) -> Any:
    """A model file of our catalog, for a paired satellite deploying it (it checks the digest)."""
    try:
        await _verified(request, web)
    except FederationRefused as error:
        return refused(str(error))

    def published() -> bool:
        with web.pool.database.connection() as conn:
            row = conn.execute(
                "SELECT 1 FROM models_view WHERE digest = %s AND NOT retired LIMIT 1", (digest,)
            ).fetchone()
        return row is not None and web.pool.blobs.has(digest)

    try:
        found = await asyncio.to_thread(published)
    except NotFound:  # not a sha256 digest at all
        found = False
    if not found:
        return refused(f"no model file {digest} in this pool's catalog", 404)
    return FileResponse(web.pool.blobs.path(digest), media_type="application/octet-stream")
