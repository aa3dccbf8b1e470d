"""Pools this pool trusts: pairings with pinned keys, invites, quarantine.

Both sides of a pairing record it (the protocol is reciprocal), each in its own store.
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from eventsourcing.domain import event

from domain.aggregate import PoolAggregate
from domain.context import Scope
from domain.errors import DomainError

FEDERATION_NAMESPACE = uuid.UUID("1d2e3f4a-5b6c-4d7e-8f90-a1b2c3d4e5f6")


class PeerStatus(StrEnum):
    PAIRED = "paired"
    QUARANTINED = "quarantined"
    UNPAIRED = "unpaired"


class PairingRefused(DomainError):
    code = "pairing_refused"


class PeerStateError(DomainError):
    code = "peer_state"


class Peer(PoolAggregate):
    # Local for now: each side records its own view of the pairing.
    scope = Scope.LOCAL

    @event("Paired")
    def __init__(
        self,
        peer_pool_id: str,
        url: str,
        name: str,
        key_id: str,
        public_key: str,
        initiated_here: bool,
    ) -> None:
        self.peer_pool_id = peer_pool_id
        self._pin(url, name, key_id, public_key)
        self.initiated_here = initiated_here
        self.status = PeerStatus.PAIRED
        self.status_reason = "paired"

    @staticmethod
    def create_id(peer_pool_id: str) -> uuid.UUID:
        return uuid.uuid5(FEDERATION_NAMESPACE, f"peer:{peer_pool_id}")

    def _pin(self, url: str, name: str, key_id: str, public_key: str) -> None:
        self.url = url
        self.name = name
        self.key_id = key_id
        self.public_key = public_key

    def pair_again(
        self, url: str, name: str, key_id: str, public_key: str, initiated_here: bool
    ) -> None:
        if self.status is not PeerStatus.UNPAIRED:
            raise PairingRefused(f"already paired with {self.name or self.peer_pool_id}")
        self._paired_again(
            url=url, name=name, key_id=key_id, public_key=public_key, initiated_here=initiated_here
        )

    @event("PairedAgain")
    def _paired_again(
        self, url: str, name: str, key_id: str, public_key: str, initiated_here: bool
    ) -> None:
        self._pin(url, name, key_id, public_key)
        self.initiated_here = initiated_here
        self.status = PeerStatus.PAIRED
        self.status_reason = "paired again"

    def repin(self, key_id: str, public_key: str) -> None:
        """The peer rotated its key (the announcement was signed by the old and new keys)."""
        if self.status is PeerStatus.UNPAIRED:
            raise PeerStateError("not paired")
        self._repinned(key_id=key_id, public_key=public_key)

    @event("KeyRepinned")
    def _repinned(self, key_id: str, public_key: str) -> None:
        self.key_id = key_id
        self.public_key = public_key

    def unpair(self) -> None:
        if self.status is PeerStatus.UNPAIRED:
            raise PeerStateError("not paired")
        self._unpaired()

    @event("Unpaired")
    def _unpaired(self) -> None:
        self.status = PeerStatus.UNPAIRED
        self.status_reason = "unpaired"

    def quarantine(self, reason: str) -> bool:
        if self.status is not PeerStatus.PAIRED:
            return False
        self._quarantined(reason=reason[:500])
        return True

    @event("Quarantined")
    def _quarantined(self, reason: str) -> None:
        self.status = PeerStatus.QUARANTINED
        self.status_reason = reason

    def release(self) -> None:
        if self.status is not PeerStatus.QUARANTINED:
            raise PeerStateError("this peer is not quarantined")
        self._released()

    @event("Released")
    def _released(self) -> None:
        self.status = PeerStatus.PAIRED
        self.status_reason = "released from quarantine"


class Invites(PoolAggregate):
    """One-time, expiring pairing codes (only their hashes are recorded)."""

    scope = Scope.LOCAL

    @event("Started")
    def __init__(self, pool_id: str) -> None:
        self.pool_id = pool_id
        self.open: dict[str, float] = {}  # code hash -> expiry (unix seconds)

    @staticmethod
    def create_id(pool_id: str) -> uuid.UUID:
        return uuid.uuid5(FEDERATION_NAMESPACE, f"invites:{pool_id}")

    @event("InviteIssued")
    def issue(self, code_hash: str, expires_at: int) -> None:
        self.open[code_hash] = expires_at

    def use(self, code_hash: str, now: float, by_pool: str) -> None:
        expires = self.open.get(code_hash)
        if expires is None:
            raise PairingRefused("this invite code is unknown or was used already")
        if now > expires:
            raise PairingRefused("this invite code has expired; ask for a new one")
        self._used(code_hash=code_hash, by_pool=by_pool)

    @event("InviteUsed")
    def _used(self, code_hash: str, by_pool: str) -> None:
        self.open.pop(code_hash, None)
