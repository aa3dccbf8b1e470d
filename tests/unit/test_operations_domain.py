"""Incidents, migrations and the balancer's decisions, on the real event store in memory."""

from __future__ import annotations

import os

import pytest

from application.balancer import HOT, ModelPlacement, decide
from application.incidents import IncidentService, Trouble
from application.mail import MAX_ATTEMPTS, MailError, MailService, SmtpServer
from application.migrations import WorkerLoad
from domain.context import CommandContext, recording
from domain.incidents import IncidentKind, IncidentStateError, IncidentStatus
from domain.mail import MailStatus, NoticeKind, SmtpSecurity
from domain.migrations import Migration, MigrationStateError, MigrationStatus, Step
from domain.notifications import Severity
from infrastructure.crypto import MasterSecretBox
from tests.unit.memory import memory_store

HEALTH = CommandContext(actor="automation:health", reason="checks")
ADMIN = CommandContext(actor="admin:alice", reason="r")


def trouble(detail: str = "no answer") -> Trouble:
    return Trouble(
        cause="worker_offline:w1",
        kind=IncidentKind.WORKER_OFFLINE,
        severity=Severity.CRITICAL,
        title="Worker w1 is offline",
        detail=detail,
        subject="worker:w1",
    )


def test_the_same_cause_updates_the_active_incident_instead_of_opening_another() -> None:
    service = IncidentService(memory_store())
    first, opened = service.report(trouble(), HEALTH)
    again, reopened = service.report(trouble("still no answer"), HEALTH)
    assert opened and not reopened and again.id == first.id
    assert again.occurrences == 2 and again.detail == "still no answer"
    # The same sighting moments later adds nothing (a peer failing every 3 s would flood).
    same, _ = service.report(trouble("still no answer"), HEALTH)
    assert same.occurrences == 2

    assert service.clear("worker_offline:w1", "answers again", HEALTH) is not None
    assert service.get(str(first.id)).status == IncidentStatus.RESOLVED
    assert service.clear("worker_offline:w1", "answers again", HEALTH) is None
    # After resolution, the cause opens a new incident (a new id, deterministic).
    later, opened_later = service.report(trouble(), HEALTH)
    assert opened_later and later.id != first.id


def test_incident_commands_follow_its_state() -> None:
    service = IncidentService(memory_store())
    incident = service.open_by_hand("UPS on battery", "", Severity.WARNING, ADMIN)
    service.acknowledge(str(incident.id), ADMIN)
    with pytest.raises(IncidentStateError, match="already acknowledged"):
        service.acknowledge(str(incident.id), ADMIN)
    service.resolve(str(incident.id), "power back", ADMIN)
    with pytest.raises(IncidentStateError, match="resolved"):
        service.assign(str(incident.id), "bob", ADMIN)


def test_a_migration_runs_its_steps_in_order() -> None:
    with recording(ADMIN, "pool-test"):
        migration = Migration(
            cause="c",
            kind="move",
            model_id="m",
            source_id="a",
            target_id="b",
            not_before=None,
            proposed=False,
            incident_id=None,
        )
        migration.start()
        with pytest.raises(MigrationStateError, match="not the next step"):
            migration.step_done(Step.SWITCH, "too early")
        for step in (Step.DEPLOY, Step.VERIFY, Step.SWITCH, Step.REMOVE):
            migration.step_done(step, "ok")
        migration.complete()
        assert migration.status == MigrationStatus.COMPLETED
        with pytest.raises(MigrationStateError):
            migration.cancel()


def w(worker_id: str, inflight: int, capacity: int = 2, online: bool = True) -> WorkerLoad:
    return WorkerLoad(worker_id, worker_id, online, False, inflight, capacity)


def test_the_balancer_adds_a_replica_only_when_every_host_is_busy() -> None:
    workers = [w("hot", 2), w("idle", 0), w("mid", 1)]
    model = ModelPlacement("m", "mistral:7b", ["hot"])
    decision = decide(workers, [model], 0.25, set(), set())
    assert (decision.action, decision.target_id) == ("add_replica", "idle")
    assert decision.inputs["workers"][0]["inflight"] == 2
    # Hysteresis: once a replica exists somewhere with room, it stays still.
    with_replica = ModelPlacement("m", "mistral:7b", ["hot", "idle"])
    busy_not_full = [w("hot", 3, capacity=4), w("idle", 0), w("mid", 1)]
    still = decide(busy_not_full, [with_replica], 0.25, set(), set())
    assert still.action == "none" and "still has room" in still.reason
    # Cool-down and orders in flight hold it back too.
    assert "cooling down" in decide(workers, [model], 0.25, {"m"}, set()).reason
    assert "in flight" in decide(workers, [model], 0.25, set(), {"m"}).reason


def test_the_balancer_drains_an_overloaded_worker_and_undrains_it_once_cooled() -> None:
    with_replica = ModelPlacement("m", "mistral:7b", ["hot", "idle"])
    workers = [w("hot", 3), w("idle", 0), w("mid", 1)]
    drain = decide(workers, [with_replica], 0.25, set(), set())
    assert (drain.action, drain.target_id) == ("drain", "hot")
    # Drained (not usable) and still busy: nothing to do, and no undrain either.
    busy = WorkerLoad("hot", "hot", True, True, 2, 2)
    still = decide(
        [busy, w("idle", 0), w("mid", 1)], [with_replica], 0.25, set(), set(), frozenset({"hot"})
    )
    assert still.action == "none"
    cooled = WorkerLoad("hot", "hot", True, True, 0, 2)
    undrain = decide([cooled, w("idle", 0)], [with_replica], 0.25, set(), set(), frozenset({"hot"}))
    assert (undrain.action, undrain.target_id) == ("undrain", "hot")
    # A worker an admin drained is never undrained by the balancer.
    assert decide([cooled, w("idle", 0)], [with_replica], 0.25, set(), set()).action == "none"


@pytest.mark.parametrize(
    ("workers", "words"),
    [
        ([w("a", 2)], "fewer than two"),
        ([w("a", 1), w("b", 1)], "within the threshold"),
        ([w("a", 2, capacity=4), w("b", 0)], f"below {HOT:.0%}"),
        ([w("a", 2), w("b", 0, online=False)], "fewer than two"),
    ],
)
def test_the_balancer_says_why_it_does_nothing(workers: list[WorkerLoad], words: str) -> None:
    decision = decide(workers, [ModelPlacement("m", "x:1", ["a"])], 0.25, set(), set())
    assert decision.action == "none" and words in decision.reason


class RefusingServer:
    """The SMTP server of the outside world, down."""

    def send(self, server: SmtpServer, to: str, subject: str, body: str) -> str:
        raise MailError("cannot talk to mx:25: connection refused")


def test_a_mail_sent_again_after_giving_up_can_give_up_again() -> None:
    store = memory_store()
    mail = MailService(store, MasterSecretBox(os.urandom(32)), RefusingServer())
    admin = CommandContext(actor="admin:alice", reason="r")
    mail.configure("mx", 25, SmtpSecurity.NONE, "", None, "archipel@example.org", admin)
    mail.set_recipients([("ops@example.org", ["incident"])], admin)
    with recording(admin, store.pool_id):
        queued = mail.compose("c1", NoticeKind.INCIDENT, "Line one\nline two", "body")
    store.store(*queued)
    mail_id = str(queued[0].id)
    assert queued[0].subject == "Line one line two"

    for _ in range(2):  # give up, send again, give up again: never stuck half-way
        for attempt in range(1, MAX_ATTEMPTS + 1):
            if attempt < MAX_ATTEMPTS:
                with pytest.raises(MailError):
                    mail.deliver(mail_id, "cause")
            else:
                assert mail.deliver(mail_id, "cause") == MailStatus.FAILED
        assert mail.get(mail_id).status == MailStatus.FAILED
        mail.retry(mail_id, admin)
