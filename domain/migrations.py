"""Migration orders (pool-local): move a model from one worker to another, or add a replica.

An order is executed step by step, each step an event: deploy on the target, verify it answers,
switch traffic (the catalog's assignments), remove from the source. A failed step rolls back
what the earlier steps did. Orders from automations wait for an admin's approval when the
cluster's failover mode is manual (`proposed`).
"""

from __future__ import annotations

import uuid
from enum import StrEnum

from eventsourcing.domain import event

from domain.aggregate import PoolAggregate
from domain.context import Scope
from domain.errors import DomainError

MIGRATION_NAMESPACE = uuid.UUID("c4d5e6f7-0819-42a3-b4c5-d6e7f8091a2b")


class MigrationKind(StrEnum):
    MOVE = "move"  # off the source, onto the target
    REPLICATE = "replicate"  # onto the target as well (the balancer's extra replica)


class MigrationStatus(StrEnum):
    PROPOSED = "proposed"  # waits for an admin (manual failover mode)
    PENDING = "pending"  # approved or ordered; runs when due
    RUNNING = "running"
    COMPLETED = "completed"
    ROLLED_BACK = "rolled_back"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


FINISHED = (
    MigrationStatus.COMPLETED,
    MigrationStatus.ROLLED_BACK,
    MigrationStatus.REJECTED,
    MigrationStatus.CANCELLED,
)


class Step(StrEnum):
    DEPLOY = "deploy"
    VERIFY = "verify"
    SWITCH = "switch"
    REMOVE = "remove"


def steps_of(kind: MigrationKind) -> list[Step]:
    steps = [Step.DEPLOY, Step.VERIFY, Step.SWITCH]
    return [*steps, Step.REMOVE] if kind == MigrationKind.MOVE else steps


class MigrationStateError(DomainError):
    code = "migration_state"


class InvalidMigration(DomainError):
    code = "invalid_migration"


class Migration(PoolAggregate):
    scope = Scope.LOCAL

    @event("Created")
    def __init__(
        self,
        cause: str,
        kind: str,
        model_id: str,
        source_id: str | None,
        target_id: str,
        not_before: str | None,
        proposed: bool,
        incident_id: str | None,
    ) -> None:
        self.cause = cause  # what ordered it: an event id, or a fresh id for an admin order
        self.kind = MigrationKind(kind)
        self.model_id = model_id
        self.source_id = source_id
        self.target_id = target_id
        self.not_before = not_before  # ISO 8601 UTC, or None: as soon as possible
        self.incident_id = incident_id
        self.status = MigrationStatus.PROPOSED if proposed else MigrationStatus.PENDING
        self.done: list[str] = []  # steps completed, in order

    @staticmethod
    def create_id(cause: str, model_id: str) -> uuid.UUID:
        """Deterministic for automation orders (one per cause and model: redelivery-safe)."""
        return uuid.uuid5(MIGRATION_NAMESPACE, f"{cause}:{model_id}")

    @property
    def steps(self) -> list[Step]:
        return steps_of(self.kind)

    def _expect(self, *statuses: MigrationStatus) -> None:
        if self.status not in statuses:
            raise MigrationStateError(f"this migration is {self.status.value}")

    def approve(self) -> None:
        self._expect(MigrationStatus.PROPOSED)
        self._approved()

    @event("Approved")
    def _approved(self) -> None:
        self.status = MigrationStatus.PENDING

    def reject(self) -> None:
        self._expect(MigrationStatus.PROPOSED)
        self._rejected()

    @event("Rejected")
    def _rejected(self) -> None:
        self.status = MigrationStatus.REJECTED

    def cancel(self) -> None:
        self._expect(MigrationStatus.PROPOSED, MigrationStatus.PENDING)
        self._cancelled()

    @event("Cancelled")
    def _cancelled(self) -> None:
        self.status = MigrationStatus.CANCELLED

    def start(self) -> None:
        self._expect(MigrationStatus.PENDING)
        self._started()

    @event("Started")
    def _started(self) -> None:
        self.status = MigrationStatus.RUNNING

    def next_step(self) -> Step | None:
        remaining = [s for s in self.steps if s.value not in self.done]
        return remaining[0] if remaining else None

    def step_done(self, step: Step, detail: str, skipped: bool = False) -> None:
        self._expect(MigrationStatus.RUNNING)
        if step != self.next_step():
            raise MigrationStateError(f"step {step.value} is not the next step")
        self._step_done(step=step.value, detail=detail[:500], skipped=skipped)

    @event("StepDone")
    def _step_done(self, step: str, detail: str, skipped: bool) -> None:
        self.done.append(step)

    def step_failed(self, step: Step, error: str) -> None:
        self._expect(MigrationStatus.RUNNING)
        self._step_failed(step=step.value, error=error[:500])

    @event("StepFailed")
    def _step_failed(self, step: str, error: str) -> None:
        pass

    def rolled_back(self, detail: str, incident_id: str | None) -> None:
        self._expect(MigrationStatus.RUNNING)
        self._rolled_back(detail=detail[:500], incident_id=incident_id)

    @event("RolledBack")
    def _rolled_back(self, detail: str, incident_id: str | None) -> None:
        self.status = MigrationStatus.ROLLED_BACK
        self.incident_id = incident_id or self.incident_id

    def complete(self) -> None:
        self._expect(MigrationStatus.RUNNING)
        if self.next_step() is not None:
            raise MigrationStateError("steps remain")
        self._completed()

    @event("Completed")
    def _completed(self) -> None:
        self.status = MigrationStatus.COMPLETED
