"""The periodic balancer: from live load, add a replica of a hot model on an idle worker,
drain an overloaded worker, or do nothing.

It adds a replica only when
- the spread between the busiest and the idlest usable worker exceeds the threshold flag,
- every worker serving the model is busy (load >= HOT), so the model has no room anywhere,
- a usable worker without the model is idle enough (load <= hot load - threshold),
- the model is out of its cool-down (no order of the balancer for it within the cool-down)
  and has no migration in flight.
Hysteresis comes from the second rule: once a replica exists on an idle worker the model has
room, so the balancer stays still until that replica is busy too; the cool-down stops it from
acting again on a model whose new replica is still being deployed.

When no replica is due and a worker runs at or over its capacity while another usable worker
has room, it drains that worker: it takes no new models (failover, replicas and "any N"
assignments go elsewhere). It undrains a worker it drained itself once its load falls to 25%
or less; never one an admin drained. Drain at 100%, undrain at 25%: no flapping in between.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from application.migrations import MigrationService, WorkerLoad
from application.ports import AggregateStore
from domain.automations import AutomationDecision
from domain.context import CommandContext, recording
from domain.errors import DomainError

BALANCER_ACTOR = "automation:balancer"
HOT = 0.75  # a worker at or above this share of its capacity has no room
OVERLOADED = 1.0  # all its capacity in use or more: the balancer drains it
COOLED = 0.25  # a worker the balancer drained takes models again at or below this


@dataclass(frozen=True)
class ModelPlacement:
    id: str
    reference: str
    workers: list[str]  # workers that serve it (assigned or deployed)


@dataclass(frozen=True)
class Decision:
    action: str  # "add_replica" or "none"
    reason: str
    model_id: str | None = None
    target_id: str | None = None  # the worker that gets the replica, or is (un)drained
    inputs: dict[str, Any] = field(default_factory=dict)


def decide(
    workers: list[WorkerLoad],
    models: list[ModelPlacement],
    threshold: float,
    cooling: set[str],
    in_flight: set[str],
    drained_by_balancer: frozenset[str] = frozenset(),
) -> Decision:
    usable = [w for w in workers if w.usable]
    inputs = {
        "threshold": str(threshold),
        "workers": [
            {"id": w.id, "name": w.name, "inflight": w.inflight, "capacity": w.capacity}
            for w in usable
        ],
    }

    def none(reason: str) -> Decision:
        return Decision("none", reason, inputs=inputs)

    cooled = [
        w
        for w in workers
        if w.online and w.drained and w.id in drained_by_balancer and w.load <= COOLED
    ]
    if cooled:
        worker = min(cooled, key=lambda w: w.name)
        return Decision(
            "undrain",
            f"{worker.name} is down to {worker.load:.0%} (at most {COOLED:.0%}): it takes "
            "models again",
            target_id=worker.id,
            inputs=inputs,
        )
    if len(usable) < 2:
        return none("fewer than two usable workers: nowhere to spread load")
    load = {w.id: w.load for w in usable}
    hot = max(usable, key=lambda w: (w.load, w.name))
    idle = min(usable, key=lambda w: (w.load, w.name))
    spread = hot.load - idle.load
    if spread <= threshold:
        return none(f"load spread {spread:.2f} is within the threshold {threshold:.2f}")
    if hot.load < HOT:
        return none(f"the busiest worker {hot.name} is at {hot.load:.0%}, below {HOT:.0%}")
    on_hot = [m for m in models if hot.id in m.workers]
    if not on_hot:
        return none(f"{hot.name} is busy but serves no catalog model")
    reasons = []
    for model in sorted(on_hot, key=lambda m: m.reference):
        serving = [w for w in model.workers if w in load]
        if any(load[w] < HOT for w in serving):
            reasons.append(f"{model.reference} still has room on another worker")
            continue
        if model.id in cooling:
            reasons.append(f"{model.reference} is cooling down after the last order")
            continue
        if model.id in in_flight:
            reasons.append(f"{model.reference} already has a migration in flight")
            continue
        free = [w for w in usable if w.id not in model.workers and w.load <= hot.load - threshold]
        if not free:
            reasons.append(f"no idle worker can take {model.reference}")
            continue
        target = min(free, key=lambda w: (w.load, w.name))
        return Decision(
            "add_replica",
            f"every worker serving {model.reference} is at {HOT:.0%} or more "
            f"({hot.name} {hot.load:.0%}); {target.name} is at {target.load:.0%}",
            model.id,
            target.id,
            inputs,
        )
    if hot.load >= OVERLOADED and any(w.load < HOT for w in usable if w.id != hot.id):
        return Decision(
            "drain",
            f"{hot.name} is at {hot.load:.0%} of its capacity and "
            f"{'; '.join(reasons)}: it takes no new models until it is down to {COOLED:.0%}",
            target_id=hot.id,
            inputs=inputs,
        )
    return none("; ".join(reasons))


class WorkerSteering(Protocol):
    def drain(self, worker_id: str, context: CommandContext) -> Any: ...

    def undrain(self, worker_id: str, context: CommandContext) -> Any: ...


class BalancerAutomation:
    def __init__(
        self, store: AggregateStore, migrations: MigrationService, workers: WorkerSteering
    ) -> None:
        self._store = store
        self._migrations = migrations
        self._workers = workers

    def run(
        self,
        workers: list[WorkerLoad],
        models: list[ModelPlacement],
        threshold: float,
        cooling: set[str],
        in_flight: set[str],
        last_reason: Callable[[], str | None],
        drained_by_balancer: frozenset[str] = frozenset(),
    ) -> Decision:
        """Decide and record; an unchanged "none" is not recorded again (one per change)."""
        decision = decide(workers, models, threshold, cooling, in_flight, drained_by_balancer)
        if decision.action == "none" and decision.reason == last_reason():
            return decision
        context = CommandContext(actor=BALANCER_ACTOR, reason=decision.reason[:2000])
        with recording(context, self._store.pool_id):
            record = AutomationDecision(
                automation="balancer", action=decision.action, inputs=asdict(decision)
            )
            self._store.store(record)
        if decision.action == "add_replica":
            assert decision.model_id is not None
            assert decision.target_id is not None
            self._migrations.order_replica(
                decision.model_id,
                decision.target_id,
                str(record.id),
                context.caused_by(str(record.id), BALANCER_ACTOR),
            )
        elif decision.action in ("drain", "undrain"):
            assert decision.target_id is not None
            steer = getattr(self._workers, decision.action)
            with contextlib.suppress(DomainError):  # an admin changed it meanwhile
                steer(decision.target_id, context.caused_by(str(record.id), BALANCER_ACTOR))
        return decision
