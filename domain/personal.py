"""Personal data in events: sealed with the data key of the person it belongs to.

Events are immutable, so names, e-mail addresses and free text a person wrote never enter an
event in clear. They are `Sealed` with that person's data key; erasing the person deletes the
key (crypto-shredding), and every copy of the field, in every event and every replica, becomes
unreadable while the events themselves stay valid and replayable.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from eventsourcing.domain import event

from domain.aggregate import PoolAggregate
from domain.context import Scope

ERASURE_NAMESPACE = uuid.UUID("2b4f3c1e-7d9a-4e2b-8c5f-1a6d0e9b7c34")


@dataclass(frozen=True)
class Sealed:
    """A personal field encrypted with the data key of `subject` (nonce and ciphertext, base64)."""

    subject: str
    box: str

    def __repr__(self) -> str:  # never leak ciphertext sizes or content into logs
        return f"Sealed(subject={self.subject!r})"


class Erasure(PoolAggregate):
    """The record that a person's personal data was erased (replicated: peers erase too)."""

    scope = Scope.REPLICATED

    @event("PersonalDataErased")
    def __init__(self, subject: str) -> None:
        self.subject = subject

    @staticmethod
    def create_id(subject: str) -> uuid.UUID:
        return uuid.uuid5(ERASURE_NAMESPACE, subject)
