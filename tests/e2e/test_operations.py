"""Incidents, failsafe escalation by e-mail, failover, migrations and the balancer, end to end:
a real pool, worker-sim workers and a real SMTP server (aiosmtpd) on loopback."""

from __future__ import annotations

import email
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from tests.e2e.admin_client import AdminClient
from tests.e2e.conftest import PoolProcess
from tests.e2e.sim import SimProcess, free_ports
from tests.waiting import eventually

Onboarded = tuple[PoolProcess, AdminClient]
OPS = "ops@example.org"


class Inbox:
    """aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages.append(email.message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"

    def find(self, words: str) -> list[Message]:
        with self.lock:
            return [m for m in self.messages if words in str(m["Subject"])]


def start_smtp(port: int) -> tuple[Controller, Inbox]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, inbox


@pytest.fixture(scope="module")
def smtp_port() -> int:
    return free_ports(1)


@pytest.fixture(scope="module")
def mailbox(smtp_port: int) -> Iterator[Inbox]:
    controller, inbox = start_smtp(smtp_port)
    yield inbox
    controller.stop()


@pytest.fixture(scope="module")
def ops(onboarded: Onboarded, smtp_port: int, mailbox: Inbox) -> Onboarded:
    """SMTP set, a recipient for every kind, fast health checks and escalation."""
    _, alice = onboarded
    for key, value in (
        ("workers.health_check_interval_seconds", 2),
        ("cluster.failsafe_escalation_delay_seconds", 10),
        ("cluster.balancer_enabled", False),  # only the balancer test turns it on
    ):
        assert alice.put(f"/api/settings/{key}", {"value": value, "reason": "tests"}).is_success
    smtp = alice.put(
        "/api/smtp",
        {
            "host": "127.0.0.1",
            "port": smtp_port,
            "security": "none",
            "username": "",
            "password": "s3cret-smtp-password",
            "sender": "archipel@example.org",
            "reason": "mail relay",
        },
    )
    assert smtp.status_code == 200, smtp.text
    assert smtp.json()["password_set"] is True and "s3cret" not in smtp.text
    recipients = alice.put(
        "/api/notifications/recipients",
        {"items": [{"address": OPS, "kinds": ["incident", "escalation", "migration"]}]},
    )
    assert recipients.status_code == 200, recipients.text
    return onboarded


def register(alice: AdminClient, url: str, name: str, capacity: int = 4) -> str:
    answer = alice.post(
        "/api/workers", {"url": url, "name": name, "capacity": capacity, "reason": "tests"}
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def online(alice: AdminClient, *worker_ids: str) -> None:
    eventually(
        lambda: all(
            alice.get(f"/api/workers/{w}").json()["status"] == "online" for w in worker_ids
        ),
        timeout=30,
    )


def library_model(alice: AdminClient, name: str, tag: str) -> str:
    added = alice.post("/api/models/library", {"name": name, "tag": tag, "reason": "tests"})
    assert added.status_code == 201, added.text
    return str(added.json()["id"])


def deploy(alice: AdminClient, model_id: str, worker_id: str) -> None:
    assigned = alice.post(
        f"/api/models/{model_id}/assignments", {"worker_ids": [worker_id], "reason": "tests"}
    )
    assert assigned.status_code == 200, assigned.text
    eventually(lambda: deployed_on(alice, model_id) == {worker_id}, timeout=60)


def deployed_on(alice: AdminClient, model_id: str) -> set[str]:
    detail = alice.get(f"/api/models/{model_id}").json()
    return {d["worker_id"] for d in detail["deployments"] if d["state"] == "deployed"}


def incidents(alice: AdminClient, **filters: str) -> list[dict[str, Any]]:
    return list(alice.get("/api/incidents", params=filters).json()["items"])


def incident_about(alice: AdminClient, subject: str) -> dict[str, Any] | None:
    return next((i for i in incidents(alice) if i["subject"] == subject), None)


def migrations_of(alice: AdminClient, model_id: str) -> list[dict[str, Any]]:
    items = alice.get("/api/migrations").json()["items"]
    return [m for m in items if m["model_id"] == model_id]


def test_offline_worker_incident_escalates_by_mail_then_resolves(
    ops: Onboarded, mailbox: Inbox
) -> None:
    _, alice = ops
    sim = SimProcess().start()
    try:
        worker_id = register(alice, sim.urls[0], "gpu-escalate")
        online(alice, worker_id)
        sim.stop()  # the machine goes away

        subject = f"worker:{worker_id}"
        opened = eventually(lambda: incident_about(alice, subject), timeout=30)
        assert opened["kind"] == "worker_offline" and opened["status"] == "open"
        assert opened["opened_by"] == "automation:health"
        # The incident recipients hear of it at once ...
        eventually(lambda: mailbox.find("gpu-escalate is offline"), timeout=30)
        # ... and nobody acknowledges it: the failsafe escalates it by e-mail, with its link.
        escalation = eventually(lambda: mailbox.find("ESCALATED"), timeout=60)[0]
        assert escalation["To"] == OPS
        body = escalation.get_payload(decode=True).decode()
        assert f"/incidents?incident={opened['id']}" in body
        detail = alice.get(f"/api/incidents/{opened['id']}").json()
        kinds = [entry["kind"] for entry in detail["timeline"]]
        assert kinds[:2] == ["opened", "escalated"]
        escalated = detail["timeline"][1]
        assert escalated["actor"] == "automation:failsafe" and OPS in escalated["text"]
        assert detail["escalated_at"] is not None

        acknowledged = alice.post(f"/api/incidents/{opened['id']}/acknowledge", {"reason": "on it"})
        assert acknowledged.status_code == 200
        assert acknowledged.json()["acknowledged_by"] == "Alice Admin"
        twice = alice.post(f"/api/incidents/{opened['id']}/acknowledge", {})
        assert twice.status_code == 409 and twice.json()["code"] == "incident_state"

        sim = SimProcess(port=sim.port).start()  # the machine is back
        resolved = eventually(
            lambda: (i := incident_about(alice, subject)) and i["status"] == "resolved" and i,
            timeout=30,
        )
        assert "answers again" in resolved["resolution"]
        final = alice.get(f"/api/incidents/{opened['id']}").json()["timeline"]
        assert [e["kind"] for e in final] == ["opened", "escalated", "acknowledged", "resolved"]
        assert final[-1]["actor"] == "automation:health"
        # Exactly one escalation: the failsafe does not repeat itself.
        assert len(mailbox.find("ESCALATED")) == 1
    finally:
        sim.stop()


def test_admin_incident_commands_and_bad_input(ops: Onboarded) -> None:
    _, alice = ops
    created = alice.post(
        "/api/incidents",
        {"title": "UPS on battery", "detail": "site B", "severity": "critical", "reason": "r"},
    )
    assert created.status_code == 201, created.text
    incident = created.json()
    assert incident["kind"] == "manual" and incident["opened_by"].startswith("admin:")
    me = alice.get("/api/auth/me").json()["admin"]["id"]
    assigned = alice.post(f"/api/incidents/{incident['id']}/assign", {"admin_id": me})
    assert assigned.json()["assignee_name"] == "Alice Admin"
    commented = alice.post(f"/api/incidents/{incident['id']}/comments", {"text": "called EDF"})
    assert commented.json()["timeline"][-1]["text"] == "called EDF"

    for path, body, status, code in (
        ("/api/incidents", {"title": "", "severity": "warning"}, 422, "validation_error"),
        ("/api/incidents", {"title": "x", "severity": "apocalyptic"}, 422, "validation_error"),
        (f"/api/incidents/{incident['id']}/comments", {"text": "   "}, 422, "invalid_incident"),
        (f"/api/incidents/{incident['id']}/resolve", {"resolution": ""}, 422, "validation_error"),
        (f"/api/incidents/{incident['id']}/assign", {"admin_id": "nobody"}, 404, "not_found"),
        ("/api/incidents/not-an-id/acknowledge", {}, 404, "not_found"),
    ):
        refused = alice.post(path, body)
        assert (refused.status_code, refused.json()["code"]) == (status, code), (path, refused.text)
    assert alice.get("/api/incidents", params={"status": "bogus"}).status_code == 422

    resolved = alice.post(
        f"/api/incidents/{incident['id']}/resolve", {"resolution": "grid power back"}
    )
    assert resolved.json()["status"] == "resolved"
    again = alice.post(f"/api/incidents/{incident['id']}/comments", {"text": "post-mortem"})
    assert again.status_code == 200  # comments stay possible after resolution
    closed = alice.post(f"/api/incidents/{incident['id']}/resolve", {"resolution": "again"})
    assert closed.status_code == 409
    kinds = [e["kind"] for e in alice.get(f"/api/incidents/{incident['id']}").json()["timeline"]]
    assert kinds == ["opened", "assigned", "commented", "resolved", "commented"]
    # Filters: resolved ones come after active ones, and can be asked for alone.
    assert all(i["status"] == "resolved" for i in incidents(alice, status="resolved"))
    assert incident["id"] not in {i["id"] for i in incidents(alice, status="active")}


def test_failover_auto_moves_models_and_manual_waits_for_approval(ops: Onboarded) -> None:
    _, alice = ops
    sim = SimProcess(count=3).start()
    try:
        a, b, c = (register(alice, url, f"fo-{i}") for i, url in enumerate(sim.urls))
        online(alice, a, b, c)
        model = library_model(alice, "phi3", "mini")
        deploy(alice, model, a)

        # Auto: the failed worker's model moves to an online worker, step by step.
        alice.put("/api/settings/cluster.failover_mode", {"value": "auto", "reason": "tests"})
        sim.set_mode(0, "failing")
        moved = eventually(
            lambda: [m for m in migrations_of(alice, model) if m["status"] == "completed"],
            timeout=60,
        )[0]
        assert moved["created_by"] == "automation:failover" and moved["source_id"] == a
        assert [(s["name"], s["status"]) for s in moved["steps"]] == [
            ("deploy", "done"),
            ("verify", "done"),
            ("switch", "done"),
            ("remove", "skipped"),  # the source is offline: nothing to remove it from
        ]
        assert moved["incident_id"] is not None
        new_home = moved["target_id"]
        assert new_home in (b, c)
        assert deployed_on(alice, model) == {new_home}

        # Manual: the next failure only proposes; nothing moves until an admin approves.
        alice.put("/api/settings/cluster.failover_mode", {"value": "manual", "reason": "tests"})
        sim.set_mode([a, b, c].index(new_home), "failing")
        proposed = eventually(
            lambda: [m for m in migrations_of(alice, model) if m["status"] == "proposed"],
            timeout=60,
        )[0]
        time.sleep(3)
        assert alice.get("/api/migrations", params={"status": "proposed"}).json()["items"]
        assert deployed_on(alice, model) == {new_home}
        approved = alice.post(f"/api/migrations/{proposed['id']}/approve", {"reason": "go"})
        assert approved.status_code == 200 and approved.json()["status"] in ("pending", "running")
        eventually(
            lambda: any(
                m["id"] == proposed["id"] and m["status"] == "completed"
                for m in migrations_of(alice, model)
            ),
            timeout=60,
        )
        assert deployed_on(alice, model) == {proposed["target_id"]}
        again = alice.post(f"/api/migrations/{proposed['id']}/approve", {})
        assert again.status_code == 409 and again.json()["code"] == "migration_state"
    finally:
        alice.put("/api/settings/cluster.failover_mode", {"value": "manual", "reason": "tests"})
        sim.stop()


def test_a_migration_whose_target_fails_rolls_back(ops: Onboarded) -> None:
    _, alice = ops
    sim = SimProcess(count=2).start()
    try:
        source, target = (register(alice, url, f"mv-{i}") for i, url in enumerate(sim.urls))
        online(alice, source, target)
        model = library_model(alice, "gemma2", "2b")
        deploy(alice, model, source)

        for bad, code in (
            ({"kind": "move", "model_id": model, "source_id": source}, "invalid_migration"),
            (
                {"kind": "move", "model_id": model, "source_id": target, "target_id": source},
                "invalid_migration",
            ),
            (
                {"kind": "move", "model_id": model, "source_id": source, "target_id": source},
                "invalid_migration",
            ),
            ({"kind": "teleport"}, "validation_error"),
        ):
            refused = alice.post("/api/migrations", bad)
            assert refused.status_code == 422 and refused.json()["code"] == code, refused.text

        # Scheduled a few seconds ahead; the target starts failing before its time comes.
        when = (datetime.now(UTC) + timedelta(seconds=4)).isoformat()
        ordered = alice.post(
            "/api/migrations",
            {
                "kind": "move",
                "model_id": model,
                "source_id": source,
                "target_id": target,
                "not_before": when,
                "reason": "rebalance",
            },
        )
        assert ordered.status_code == 201, ordered.text
        order = ordered.json()["items"][0]
        assert order["status"] == "pending" and order["not_before"] is not None
        sim.set_mode(1, "failing")
        failed = eventually(
            lambda: (m := migrations_of(alice, model)[0])["status"] == "rolled_back" and m,
            timeout=60,
        )
        steps = {s["name"]: s for s in failed["steps"]}
        assert steps["deploy"]["status"] == "failed" and "500" in steps["deploy"]["detail"]
        assert failed["incident_id"]
        incident = alice.get(f"/api/incidents/{failed['incident_id']}").json()
        assert incident["kind"] == "migration_failed" and "Rolled back" in incident["detail"]
        # Nothing moved: the model is still served by its source.
        assert deployed_on(alice, model) == {source}
    finally:
        sim.stop()


def test_smtp_down_retries_then_notifies_and_loses_nothing(ops: Onboarded) -> None:
    _, alice = ops
    dead_port = free_ports(1)
    settings = alice.get("/api/smtp").json()
    moved = alice.put(
        "/api/smtp",
        {
            **{k: settings[k] for k in ("host", "security", "username", "sender")},
            "port": dead_port,
            "password": None,
        },
    )
    assert moved.json()["password_set"] is True  # null kept the password
    test = alice.post("/api/smtp/test", {"to": OPS})
    assert test.status_code == 200 and test.json()["ok"] is False
    assert "cannot talk to" in test.json()["answer"]

    alice.post("/api/incidents", {"title": "Mail relay test", "severity": "info"})
    failed = eventually(
        lambda: [
            m
            for m in alice.get("/api/smtp/mails").json()["items"]
            if "Mail relay test" in m["subject"] and m["status"] == "failed"
        ],
        timeout=120,
    )[0]
    assert failed["attempts"] == 5 and "cannot talk to" in failed["last_error"]
    notice = eventually(
        lambda: [
            n
            for n in alice.get("/api/notifications").json()["items"]
            if n["title"] == f"E-mail to {OPS} could not be sent"
        ]
    )[0]
    assert notice["severity"] == "warning" and notice["read"] is False

    # The server comes back: the kept mail is sent again on demand.
    controller, inbox = start_smtp(dead_port)
    try:
        retried = alice.post(f"/api/smtp/mails/{failed['id']}/retry")
        assert retried.status_code == 200 and retried.json()["status"] == "queued"
        eventually(lambda: inbox.find("Mail relay test"), timeout=30)
        sent = eventually(
            lambda: [
                m
                for m in alice.get("/api/smtp/mails").json()["items"]
                if m["id"] == failed["id"] and m["status"] == "sent"
            ]
        )[0]
        assert sent["answer"].startswith("250")
        ok = alice.post("/api/smtp/test", {"to": OPS})
        assert ok.json() == {"ok": True, "answer": "250 Message accepted for delivery"}
    finally:
        controller.stop()
        alice.put(
            "/api/smtp",
            {**{k: settings[k] for k in ("host", "port", "security", "username", "sender")}},
        )
    # Marking read is per admin and lowers the unread count.
    before = alice.get("/api/notifications").json()["unread"]
    after = alice.post(f"/api/notifications/{notice['id']}/read").json()["unread"]
    assert after == before - 1
    assert alice.post("/api/notifications/read-all").json()["unread"] == 0


def test_smtp_and_recipient_input_is_checked(ops: Onboarded) -> None:
    _, alice = ops
    for bad in (
        {"host": "bad host", "port": 25, "security": "none", "sender": "a@b.org"},
        {"host": "mx", "port": 25, "security": "none", "sender": "not-an-address"},
        {"host": "mx", "port": 70000, "security": "none", "sender": "a@b.org"},
        {"host": "mx", "port": 25, "security": "ssl3", "sender": "a@b.org"},
    ):
        refused = alice.put("/api/smtp", bad)
        assert refused.status_code == 422, (bad, refused.text)
    assert alice.get("/api/smtp").json()["host"] == "127.0.0.1"  # nothing was lost
    for items, words in (
        ([{"address": "nobody", "kinds": ["incident"]}], "'nobody' is not an e-mail address"),
        ([{"address": OPS, "kinds": ["gossip"]}], "unknown notice kind"),
        ([{"address": OPS, "kinds": []}, {"address": OPS.upper(), "kinds": []}], "twice"),
    ):
        refused = alice.put("/api/notifications/recipients", {"items": items})
        assert refused.status_code == 422 and words in refused.json()["detail"], refused.text
    assert alice.get("/api/notifications/recipients").json()["items"][0]["address"] == OPS
    assert alice.post("/api/smtp/test", {"to": "x"}).status_code == 422


def test_balancer_adds_a_replica_under_load_then_stays_still(ops: Onboarded) -> None:
    _, alice = ops
    # Slow generation (not a slow server): requests stay in flight, health checks stay fast.
    sim = SimProcess(count=3, options=["--tokens-per-second", "2"]).start()
    stop = threading.Event()
    try:
        hot, *_ = ids = [
            register(alice, url, f"bal-{i}", capacity=2) for i, url in enumerate(sim.urls)
        ]
        online(alice, *ids)
        model = library_model(alice, "mistral", "7b")
        deploy(alice, model, hot)

        def load() -> None:  # keeps the hot worker at its capacity or above
            with httpx.Client(timeout=30) as client:
                while not stop.is_set():
                    try:
                        client.post(
                            f"{sim.urls[0]}/api/generate",
                            json={"model": "mistral:7b", "prompt": "hi", "stream": False},
                        )
                    except httpx.HTTPError:
                        return  # the simulator was stopped: the test is over

        for _ in range(3):
            threading.Thread(target=load, daemon=True).start()
        alice.put("/api/settings/cluster.failover_mode", {"value": "auto", "reason": "tests"})
        alice.put("/api/settings/cluster.balancer_interval_seconds", {"value": 5, "reason": "t"})
        alice.put("/api/settings/cluster.balancer_enabled", {"value": True, "reason": "tests"})

        replica = eventually(
            lambda: [m for m in migrations_of(alice, model) if m["status"] == "completed"],
            timeout=90,
        )[0]
        assert replica["kind"] == "replicate" and replica["created_by"] == "automation:balancer"
        assert replica["target_id"] in ids[1:]
        assert deployed_on(alice, model) == {hot, replica["target_id"]}
        # Still under the same load, it stays still: three more runs, no new order.
        time.sleep(16)
        assert len(migrations_of(alice, model)) == 1
        decisions = alice.get(
            "/api/audit", params={"actor": "automation:balancer", "limit": 50}
        ).json()["items"]
        after = [d for d in decisions if d["occurred_at"] > replica["updated_at"]]
        assert after and {d["event_type"] for d in after} <= {"Decided", "Drained"}
        assert any("still has room" in d["reason"] for d in after)
        # The hot worker runs over its capacity while the replica has room: it is drained
        # (takes no new models), once, and stays so while it is still busy.
        drained = [d for d in after if d["event_type"] == "Drained"]
        assert len(drained) == 1
        assert alice.get(f"/api/workers/{hot}").json()["drained"] is True
        panel = {a["id"]: a for a in alice.get("/api/automations").json()["items"]}
        balancer = panel["balancer"]
        assert balancer["enabled"] and balancer["last_run_at"] and balancer["next_run_at"]
        assert balancer["last_decision"]["actor"] == "automation:balancer"
    finally:
        stop.set()
        alice.put("/api/settings/cluster.balancer_enabled", {"value": False, "reason": "tests"})
        alice.put("/api/settings/cluster.failover_mode", {"value": "manual", "reason": "tests"})
        sim.stop()


def test_automations_panel_lists_every_automation(ops: Onboarded) -> None:
    _, alice = ops
    panel = alice.get("/api/automations").json()
    ids = {a["id"] for a in panel["items"]}
    assert ids >= {
        "balancer",
        "migrations",
        "replication",
        "failsafe",
        "auto_pairing",
        "peer_purge",
        "rag_fanout",
        "smart_routing",
    }
    assert panel["failover_mode"] in ("auto", "manual")
    later = {a["id"]: a for a in panel["items"] if not a["available"]}
    assert set(later) == {"rag_fanout", "smart_routing"}
    assert all(not a["enabled"] and a["switch_flag"] for a in later.values())
    failsafe = next(a for a in panel["items"] if a["id"] == "failsafe")
    assert failsafe["switch_flag"] == "cluster.failsafe_enabled"
    assert "cluster.failsafe_escalation_delay_seconds" in failsafe["parameter_flags"]
    # A switch is a flag: turning it off takes effect at the next tick, no restart.
    alice.put("/api/settings/cluster.failsafe_enabled", {"value": False, "reason": "tests"})
    off = {a["id"]: a for a in alice.get("/api/automations").json()["items"]}["failsafe"]
    assert off["enabled"] is False and off["next_run_at"] is None
    alice.put("/api/settings/cluster.failsafe_enabled", {"value": True, "reason": "tests"})
