"""Pairing with other pools, and which replicated events a peer may send us."""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from application.ports import AggregateStore
from domain.context import CommandContext, recording
from domain.errors import NotFound
from domain.federation import Invites, PairingRefused, Peer, PeerStatus

INVITE_TTL_SECONDS = 24 * 3600
# Aggregates whose replicated events a peer may send. (Cluster flag changes have the topic of
# their base class, FlagSet.) Anything else in a batch refuses the batch.
ACCEPTED_FROM_PEERS = ("Worker", "ClusterSettings", "FlagSet", "Erasure", "CatalogModel")
CATALOG = "CatalogModel"


@dataclass(frozen=True)
class PeerIdentity:
    pool_id: str
    url: str
    name: str
    key_id: str
    public_key: str


class PeerTransport(Protocol):
    def fetch_identity(self, url: str) -> PeerIdentity:
        """The pool at `url`, from its self-signed key document."""
        ...

    def request_pairing(self, peer: PeerIdentity, code: str) -> PeerIdentity:
        """Send our signed pairing request; returns the identity the peer confirmed."""
        ...

    def tell_unpaired(self, peer: PeerIdentity) -> None: ...


def hash_code(code: str) -> str:
    return hashlib.sha256(code.strip().encode()).hexdigest()


def may_send(event_type: str) -> bool:
    """Authorisation of an inbound event: may a paired pool send this kind at all?"""
    return event_type.split(".", 1)[0] in ACCEPTED_FROM_PEERS


def applies_to_catalog(origin: str, catalog_master: str) -> bool:
    """Every pool logs its catalog events, but only the master's edit the cluster's catalog;
    the others' are kept in the peer log and change nothing."""
    return bool(catalog_master) and origin == catalog_master


class FederationService:
    def __init__(self, store: AggregateStore, transport: PeerTransport) -> None:
        self._store = store
        self._transport = transport

    def issue_invite(self, context: CommandContext) -> tuple[str, int]:
        """A one-time code another pool's admin enters to pair with this pool."""
        code = "-".join(secrets.token_hex(3) for _ in range(4))
        expires = int(time.time()) + INVITE_TTL_SECONDS
        with recording(context, self._store.pool_id):
            invites = self._invites() or Invites(pool_id=self._store.pool_id)
            invites.issue(code_hash=hash_code(code), expires_at=expires)
            self._store.store(invites)
        return code, expires

    def pair_with(self, url: str, code: str, context: CommandContext) -> Peer:
        """This pool asks the pool at `url` to pair, with the invite code its admin gave."""
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname or not url.isprintable():
            raise PairingRefused(f"{url!r} is not an http:// or https:// URL of a pool")
        peer = self._transport.fetch_identity(url.strip().rstrip("/"))
        if peer.pool_id == self._store.pool_id:
            raise PairingRefused("that URL is this pool itself")
        existing = self.find(peer.pool_id)
        if existing is not None and existing.status is not PeerStatus.UNPAIRED:
            raise PairingRefused(f"already paired with {existing.name or peer.pool_id}")
        confirmed = self._transport.request_pairing(peer, code)
        if (confirmed.pool_id, confirmed.public_key) != (peer.pool_id, peer.public_key):
            raise PairingRefused("the peer answered with another identity than it published")
        return self._record(peer, context, initiated_here=True)

    def accept_pairing(self, requester: PeerIdentity, code: str) -> Peer:
        """Another pool, proven by its signature, asks to pair with the code we issued."""
        context = CommandContext(actor=f"peer:{requester.pool_id}", reason="pairing request")
        with recording(context, self._store.pool_id):
            invites = self._invites()
            if invites is None:
                raise PairingRefused("this invite code is unknown or was used already")
            invites.use(hash_code(code), time.time(), requester.pool_id)
            peer = self._pairing(requester, initiated_here=False)
            self._store.store(invites, peer)
        return peer

    def introduction_code(self, for_pool: str, introducer: str) -> str:
        """A code for a pool a paired peer vouches for (auto-pairing closes the mesh)."""
        context = CommandContext(actor=f"peer:{introducer}", reason=f"introduction of {for_pool}")
        existing = self.find(for_pool)
        if existing is not None and existing.status is not PeerStatus.UNPAIRED:
            raise PairingRefused("already paired with that pool")
        code, _ = self.issue_invite(context)
        return code

    def unpair(self, peer_pool_id: str, context: CommandContext, tell: bool = True) -> Peer:
        peer = self.get(peer_pool_id)
        with recording(context, self._store.pool_id):
            peer.unpair()
            self._store.store(peer)
        if tell:
            # The peer may be down: we are unpaired all the same.
            with contextlib.suppress(Exception):
                self._transport.tell_unpaired(self.identity_of(peer))
        return peer

    def repin(self, peer_pool_id: str, key_id: str, public_key: str) -> Peer:
        peer = self.get(peer_pool_id)
        context = CommandContext(actor=f"peer:{peer_pool_id}", reason=f"key rotated to {key_id}")
        with recording(context, self._store.pool_id):
            peer.repin(key_id, public_key)
            self._store.store(peer)
        return peer

    def quarantine(self, peer_pool_id: str, reason: str) -> bool:
        peer = self.get(peer_pool_id)
        context = CommandContext(actor="automation:replication", reason=reason[:500])
        with recording(context, self._store.pool_id):
            if not peer.quarantine(reason):
                return False
            self._store.store(peer)
        return True

    def release(self, peer_pool_id: str, context: CommandContext) -> Peer:
        peer = self.get(peer_pool_id)
        with recording(context, self._store.pool_id):
            peer.release()
            self._store.store(peer)
        return peer

    def find(self, peer_pool_id: str) -> Peer | None:
        try:
            return self._store.load(Peer.create_id(peer_pool_id), Peer)
        except NotFound:
            return None

    def get(self, peer_pool_id: str) -> Peer:
        peer = self.find(peer_pool_id)
        if peer is None:
            raise NotFound(f"no peer {peer_pool_id}")
        return peer

    @staticmethod
    def identity_of(peer: Peer) -> PeerIdentity:
        return PeerIdentity(peer.peer_pool_id, peer.url, peer.name, peer.key_id, peer.public_key)

    def _record(
        self, identity: PeerIdentity, context: CommandContext, initiated_here: bool
    ) -> Peer:
        with recording(context, self._store.pool_id):
            peer = self._pairing(identity, initiated_here)
            self._store.store(peer)
        return peer

    def _pairing(self, identity: PeerIdentity, initiated_here: bool) -> Peer:
        existing = self.find(identity.pool_id)
        if existing is not None:
            existing.pair_again(
                identity.url, identity.name, identity.key_id, identity.public_key, initiated_here
            )
            return existing
        return Peer(
            peer_pool_id=identity.pool_id,
            url=identity.url,
            name=identity.name,
            key_id=identity.key_id,
            public_key=identity.public_key,
            initiated_here=initiated_here,
        )

    def _invites(self) -> Invites | None:
        try:
            return self._store.load(Invites.create_id(self._store.pool_id), Invites)
        except NotFound:
            return None


def peer_summary(peer: Peer) -> dict[str, Any]:
    return {
        "pool_id": peer.peer_pool_id,
        "url": peer.url,
        "name": peer.name,
        "key_id": peer.key_id,
        "status": str(peer.status),
        "status_reason": peer.status_reason,
        "initiated_here": peer.initiated_here,
    }
