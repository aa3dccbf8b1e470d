"""Crypto-shredding: after erasure the events stay and replay, the personal fields are gone."""

from __future__ import annotations

import uuid

from eventsourcing.domain import event

from application.personal_data import ERASED
from domain.aggregate import PoolAggregate
from domain.context import CommandContext, Scope, recording
from domain.personal import Sealed
from infrastructure.bootstrap import Pool


class Contact(PoolAggregate):
    """A stand-in for an admin or an employee: an aggregate with personal fields."""

    scope = Scope.LOCAL

    @event("Registered")
    def __init__(self, subject: str, name: Sealed, email: Sealed, team: str) -> None:
        self.subject = subject
        self.name = name
        self.email = email
        self.team = team

    @event("Renamed")
    def rename(self, name: Sealed) -> None:
        self.name = name


HR = CommandContext(actor="admin:hr", reason="onboarding")


def test_erasing_a_person_shreds_their_fields_but_keeps_events_and_replay(pool: Pool) -> None:
    service = pool.personal_data
    subject = f"employee:{uuid.uuid4()}"
    other = f"employee:{uuid.uuid4()}"
    with recording(HR, pool.pool_id):
        contact = Contact(
            subject=subject,
            name=service.seal(subject, "Ada Lovelace"),
            email=service.seal(subject, "ada@example.org"),
            team="research",
        )
        contact.rename(service.seal(subject, "Ada King"))
        bystander = Contact(
            subject=other,
            name=service.seal(other, "Grace Hopper"),
            email=service.seal(other, "grace@example.org"),
            team="compilers",
        )
    pool.store.store(contact, bystander)

    # Personal fields never reach the database in clear.
    with pool.database.connection() as conn:
        states = b"".join(
            bytes(r["state"]) for r in conn.execute("SELECT state FROM archipel_events").fetchall()
        )
    assert b"Ada" not in states and b"ada@example.org" not in states
    loaded = pool.store.load(contact.id, Contact)
    assert service.reveal(loaded.name) == "Ada King"

    service.erase(subject, CommandContext(actor="admin:dpo", reason="GDPR request #12"))

    # The events are still there and the aggregate still replays from them...
    replayed = pool.store.load(contact.id, Contact)
    assert replayed.version == 2 and replayed.team == "research"
    # ...but the personal fields are unrecoverable, now and for any later reader.
    assert service.reveal(replayed.name) == ERASED
    assert service.reveal(replayed.email) == ERASED
    with pool.database.connection() as conn:
        keys = conn.execute(
            "SELECT subject FROM person_keys WHERE subject = %s", (subject,)
        ).fetchall()
    assert keys == []
    # Other people are untouched.
    assert service.reveal(pool.store.load(bystander.id, Contact).name) == "Grace Hopper"

    # The erasure is itself an event, replicated scope, and every read model rebuilds.
    audit = pool.runner("audit")
    audit.catch_up()
    with pool.database.connection() as conn:
        erasure = conn.execute(
            "SELECT actor, reason, scope FROM audit_log WHERE event_type = 'PersonalDataErased'"
        ).fetchone()
    assert erasure == {"actor": "admin:dpo", "reason": "GDPR request #12", "scope": "replicated"}
    before = audit.position()
    assert audit.rebuild() == before
    with pool.database.connection() as conn:
        payloads = conn.execute("SELECT payload::text AS p FROM audit_log").fetchall()
    assert not any("Ada" in row["p"] for row in payloads)


def test_erasing_twice_is_harmless(pool: Pool) -> None:
    subject = f"admin:{uuid.uuid4()}"
    pool.personal_data.seal(subject, "someone")
    dpo = CommandContext(actor="admin:dpo", reason="request")
    pool.personal_data.erase(subject, dpo)
    pool.personal_data.erase(subject, dpo)


def test_a_replayed_erasure_deletes_a_key_that_survived(pool: Pool) -> None:
    # If a process died between recording the erasure and deleting the key (or the erasure
    # came from a peer), the erasure projection deletes the key when it applies the event.
    subject = f"employee:{uuid.uuid4()}"
    sealed = pool.personal_data.seal(subject, "Linus")
    from domain.personal import Erasure

    with recording(CommandContext(actor="peer:pool-b", reason="erased there"), "pool-b"):
        pool.store.store(Erasure(subject=subject))
    assert pool.personal_data.reveal(sealed) == "Linus"
    pool.runner("erasure").catch_up()
    assert pool.personal_data.reveal(sealed) == ERASED
