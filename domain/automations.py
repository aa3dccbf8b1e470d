"""The pool's background automations as the admin sees them, and their recorded decisions.

Each automation has a switch and parameters that are runtime flags (so the scheduler picks
up a change at its next tick, without a restart). A decision that changes nothing (the
balancer finding the cluster balanced) is recorded too, with its inputs, so an admin can see
why the pool did not act.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from eventsourcing.domain import event

from domain.aggregate import PoolAggregate
from domain.context import Scope


@dataclass(frozen=True)
class AutomationSpec:
    id: str
    title: str
    description: str
    actor: str  # the actor its decisions are recorded under
    switch_flag: str | None  # None: always on
    parameter_flags: tuple[str, ...] = ()
    trigger: str = "periodic"  # or "event"
    interval_flag: str | None = None
    interval_seconds: int | None = None  # fixed tick when no flag sets it
    available: bool = True  # False: its backend arrives with a later release


AUTOMATIONS: tuple[AutomationSpec, ...] = (
    AutomationSpec(
        "health",
        "Worker health checks",
        "Checks every worker; two failed checks in a row mark it offline and open an incident.",
        "automation:health",
        None,
        ("workers.health_check_interval_seconds",),
        interval_flag="workers.health_check_interval_seconds",
    ),
    AutomationSpec(
        "balancer",
        "Periodic balancer",
        "Adds a replica of a model whose workers are all busy onto an idle worker; drains a "
        "worker running over its capacity, and undrains it once it cools down.",
        "automation:balancer",
        "cluster.balancer_enabled",
        (
            "cluster.balancer_interval_seconds",
            "cluster.balancer_imbalance_threshold",
            "cluster.balancer_cooldown_seconds",
        ),
        interval_flag="cluster.balancer_interval_seconds",
    ),
    AutomationSpec(
        "migrations",
        "Worker migrations",
        "Executes migration orders step by step; a failed step rolls back and opens an "
        "incident. In manual failover mode, automations only propose them.",
        "automation:migrations",
        "cluster.worker_migrations_enabled",
        ("cluster.failover_mode",),
        interval_seconds=10,
    ),
    AutomationSpec(
        "failover",
        "Failover",
        "When a worker goes offline, orders the move of its models to online workers.",
        "automation:failover",
        "cluster.worker_migrations_enabled",
        ("cluster.failover_mode",),
        trigger="event",
    ),
    AutomationSpec(
        "failsafe",
        "Failsafe escalation",
        "E-mails the escalation recipients about incidents left unacknowledged too long.",
        "automation:failsafe",
        "cluster.failsafe_enabled",
        ("cluster.failsafe_escalation_delay_seconds",),
        interval_seconds=10,
    ),
    AutomationSpec(
        "replication",
        "Cross-pool replication",
        "Pulls signed event batches from paired pools.",
        "automation:replication",
        "federation.replication_enabled",
        interval_seconds=3,
    ),
    AutomationSpec(
        "auto_pairing",
        "Auto-pairing",
        "Introduces a newly paired pool to the other paired pools.",
        "automation:auto-pairing",
        "federation.auto_pairing",
        trigger="event",
    ),
    AutomationSpec(
        "peer_purge",
        "Auto-purge of inactive peers",
        "Unpairs pools silent for longer than the threshold.",
        "automation:purge",
        "federation.auto_purge_inactive_peers",
        ("federation.peer_inactivity_threshold_hours",),
        interval_seconds=60,
    ),
    AutomationSpec(
        "disk_watch",
        "Disk space watch",
        "Opens an incident when the data directory's disk runs low on free space.",
        "automation:disk",
        None,
        ("pool.disk_space_low_percent",),
        interval_seconds=60,
    ),
    AutomationSpec(
        "rag_fanout",
        "RAG fanout",
        "Searches the documents of paired pools for retrieval-augmented answers.",
        "automation:rag",
        "federation.rag_fanout",
        trigger="event",
        available=False,
    ),
    AutomationSpec(
        "smart_routing",
        "Smart routing",
        "Routes each LLM request to the model best suited to it.",
        "automation:routing",
        "cluster.smart_routing_enabled",
        trigger="event",
        available=False,
    ),
)


class AutomationDecision(PoolAggregate):
    """One decision of a periodic automation, with the inputs it was taken from."""

    scope = Scope.LOCAL

    @event("Decided")
    def __init__(self, automation: str, action: str, inputs: dict[str, Any]) -> None:
        self.automation = automation
        self.action = action
        self.inputs = inputs

    @staticmethod
    def create_id() -> uuid.UUID:
        return uuid.uuid4()
