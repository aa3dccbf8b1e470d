"""Migration orders: admins' commands, the failover automation, and step-by-step execution."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol
from uuid import UUID, uuid4

from application.incidents import IncidentService, Trouble
from application.mail import MailService
from application.ports import AggregateStore
from domain.catalog import CatalogModel, DeployState
from domain.context import CommandContext, recording
from domain.errors import ConcurrencyConflict, NotFound
from domain.incidents import IncidentKind
from domain.mail import NoticeKind, OutgoingMail
from domain.migrations import (
    InvalidMigration,
    Migration,
    MigrationKind,
    MigrationStatus,
    Step,
)
from domain.notifications import Severity
from domain.workers import Worker

RUNNER_ACTOR = "automation:migrations"
FAILOVER_ACTOR = "automation:failover"


class PlacementError(Exception):
    """A worker could not take, show or drop a model."""


class ModelPlacer(Protocol):
    def place(self, url: str, model: CatalogModel, progress: Callable[[int, int], None]) -> None:
        """Put the model on the worker (push the file or have it pull); `PlacementError`."""
        ...

    def verify(self, url: str, reference: str) -> None:
        """Check the worker lists and describes the model; `PlacementError` if not."""
        ...

    def remove(self, url: str, reference: str) -> None: ...


@dataclass(frozen=True)
class WorkerLoad:
    """A worker as placement decisions see it (registry + live telemetry)."""

    id: str
    name: str
    online: bool
    drained: bool
    inflight: int
    capacity: int

    @property
    def load(self) -> float:
        return self.inflight / self.capacity if self.capacity else 1.0

    @property
    def usable(self) -> bool:
        return self.online and not self.drained


def pick_target(model: CatalogModel, workers: list[WorkerLoad], busy: set[str]) -> str | None:
    """The least loaded usable worker that does not have the model yet (nor is getting it)."""
    free = [w for w in workers if w.usable and w.id not in model.deployments and w.id not in busy]
    return min(free, key=lambda w: (w.load, w.name)).id if free else None


def parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidMigration(f"{value!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise InvalidMigration("give the time with its offset (e.g. 2026-12-01T02:00:00Z)")
    return moment.astimezone(UTC)


class MigrationService:
    def __init__(
        self,
        store: AggregateStore,
        incidents: IncidentService,
        mail: MailService,
        failover_mode: Callable[[], str],
    ) -> None:
        self._store = store
        self._incidents = incidents
        self._mail = mail
        self._failover_mode = failover_mode

    def get(self, migration_id: str) -> Migration:
        try:
            return self._store.load(UUID(migration_id), Migration)
        except (ValueError, NotFound):
            raise NotFound(f"no migration {migration_id}") from None

    def order_move(
        self,
        model_id: str,
        source_id: str,
        target_id: str,
        not_before: str | None,
        context: CommandContext,
        in_flight: Callable[[str], set[str]],
    ) -> Migration:
        """An admin's order: executed without approval (the admin is the approval)."""
        model = self._model(model_id)
        source, target = self._worker(source_id), self._worker(target_id)
        if source.id == target.id:
            raise InvalidMigration("the source and the target are the same worker")
        if source_id not in model.deployments:
            raise InvalidMigration(f"{model.reference} is not on {source.name}")
        if target_id in model.deployments or target_id in in_flight(model_id):
            raise InvalidMigration(f"{model.reference} is already on (or moving to) {target.name}")
        if target.removed or target.drained:
            raise InvalidMigration(f"{target.name} does not take new models (removed or draining)")
        moment = parse_time(not_before)
        with recording(context, self._store.pool_id):
            migration = Migration(
                cause=str(uuid4()),
                kind=MigrationKind.MOVE.value,
                model_id=model_id,
                source_id=source_id,
                target_id=target_id,
                not_before=moment.isoformat() if moment else None,
                proposed=False,
                incident_id=None,
            )
            self._store.store(migration)
        return migration

    def plan_moves_off(
        self,
        worker_id: str,
        model_ids: list[str],
        workers: list[WorkerLoad],
        in_flight: Callable[[str], set[str]],
        cause: str,
        context: CommandContext,
        incident_id: str | None = None,
        proposed: bool | None = None,
        dry_run: bool = False,
    ) -> tuple[list[Migration], list[str]]:
        """One move per model on the worker (`model_ids`, from the catalog view), each to the
        least loaded usable worker.

        Returns the orders and the models no worker could take. Orders are proposed (waiting
        for an admin) in manual failover mode unless `proposed` says otherwise. A dry run
        stores nothing.
        """
        if proposed is None:
            proposed = self._failover_mode() != "auto"
        orders: list[Migration] = []
        stranded: list[str] = []
        chosen: dict[str, int] = {}
        for model in map(self._model, model_ids):
            if worker_id not in model.deployments:
                continue
            migration_id = Migration.create_id(cause, str(model.id))
            if self._exists(migration_id):
                continue  # planned before (a redelivered event)
            # Spread the orders: count the ones given to each target in this plan.
            spread = [
                WorkerLoad(
                    w.id, w.name, w.online, w.drained, w.inflight + chosen.get(w.id, 0), w.capacity
                )
                for w in workers
                if w.id != worker_id
            ]
            target = pick_target(model, spread, in_flight(str(model.id)))
            if target is None:
                stranded.append(model.reference)
                continue
            chosen[target] = chosen.get(target, 0) + 1
            with recording(context, self._store.pool_id):
                orders.append(
                    Migration(
                        cause=cause,
                        kind=MigrationKind.MOVE.value,
                        model_id=str(model.id),
                        source_id=worker_id,
                        target_id=target,
                        not_before=None,
                        proposed=proposed,
                        incident_id=incident_id,
                    )
                )
        if orders and not dry_run:
            with recording(context, self._store.pool_id):
                mails = self._proposal_mails(orders, cause) if proposed else []
            try:
                self._store.store(*orders, *mails)
            except ConcurrencyConflict:
                return [], stranded  # planned by another delivery at the same moment
        return orders, stranded

    def order_replica(
        self, model_id: str, target_id: str, cause: str, context: CommandContext
    ) -> Migration | None:
        """The balancer's order: one more worker serves the model."""
        migration_id = Migration.create_id(cause, model_id)
        if self._exists(migration_id):
            return None
        proposed = self._failover_mode() != "auto"
        with recording(context, self._store.pool_id):
            migration = Migration(
                cause=cause,
                kind=MigrationKind.REPLICATE.value,
                model_id=model_id,
                source_id=None,
                target_id=target_id,
                not_before=None,
                proposed=proposed,
                incident_id=None,
            )
            mails = self._proposal_mails([migration], cause) if proposed else []
            self._store.store(migration, *mails)
        return migration

    def approve(self, migration_id: str, context: CommandContext) -> Migration:
        return self._change(migration_id, context, Migration.approve)

    def reject(self, migration_id: str, context: CommandContext) -> Migration:
        return self._change(migration_id, context, Migration.reject)

    def cancel(self, migration_id: str, context: CommandContext) -> Migration:
        return self._change(migration_id, context, Migration.cancel)

    def _change(
        self, migration_id: str, context: CommandContext, change: Callable[[Migration], None]
    ) -> Migration:
        migration = self.get(migration_id)
        with recording(context, self._store.pool_id):
            change(migration)
            self._store.store(migration)
        return migration

    def _proposal_mails(self, orders: list[Migration], cause: str) -> list[OutgoingMail]:
        lines = [f"- {self._model(o.model_id).reference} -> worker {o.target_id}" for o in orders]
        return self._mail.compose(
            f"proposed:{cause}",
            NoticeKind.MIGRATION,
            f"[Archipel] {len(orders)} migration(s) wait for your approval",
            "Failover mode is manual: these migrations wait for an admin on the "
            "Incidents & Migrations page.\n\n" + "\n".join(lines),
        )

    def _model(self, model_id: str) -> CatalogModel:
        try:
            return self._store.load(UUID(model_id), CatalogModel)
        except (ValueError, NotFound):
            raise NotFound(f"no model {model_id}") from None

    def _worker(self, worker_id: str) -> Worker:
        try:
            return self._store.load(UUID(worker_id), Worker)
        except (ValueError, NotFound):
            raise NotFound(f"no worker {worker_id}") from None

    def _exists(self, migration_id: UUID) -> bool:
        try:
            self._store.load(migration_id, Migration)
        except NotFound:
            return False
        return True


class MigrationRunner:
    """Executes one order step by step; a failed step rolls back and opens an incident."""

    def __init__(
        self,
        store: AggregateStore,
        incidents: IncidentService,
        mail: MailService,
        placer: ModelPlacer,
    ) -> None:
        self._store = store
        self._incidents = incidents
        self._mail = mail
        self._placer = placer

    def run(
        self,
        migration_id: str,
        worker_online: Callable[[str], bool],
        progress: Callable[[int, int], None],
        now: datetime | None = None,
    ) -> MigrationStatus:
        migration = self._store.load(UUID(migration_id), Migration)
        if migration.status != MigrationStatus.PENDING:
            return migration.status  # proposed, finished, or another delivery runs it
        due = parse_time(migration.not_before)
        if due is not None and due > (now or datetime.now(UTC)):
            return migration.status  # the scheduler starts it when due
        context = CommandContext(actor=RUNNER_ACTOR, reason="migration order executed")
        try:
            with recording(context, self._store.pool_id):
                migration.start()
                self._store.store(migration)
        except ConcurrencyConflict:
            return MigrationStatus.RUNNING  # another delivery started it first
        model = self._store.load(UUID(migration.model_id), CatalogModel)
        target = self._store.load(UUID(migration.target_id), Worker)
        source = (
            self._store.load(UUID(migration.source_id), Worker) if migration.source_id else None
        )
        while (step := migration.next_step()) is not None:
            try:
                detail, skipped = self._do(
                    step, migration, model, target, source, worker_online, progress
                )
            except Exception as error:  # any failure of a step rolls back: never stuck running
                self._roll_back(
                    migration, step, str(error) or type(error).__name__, model, target, context
                )
                return migration.status
            with recording(context, self._store.pool_id):
                migration.step_done(step, detail, skipped)
                self._store.store(migration)
        with recording(context, self._store.pool_id):
            migration.complete()
            self._store.store(migration)
        return migration.status

    def recover(self, migration_id: str) -> MigrationStatus:
        """A migration left `running` by a background worker that stopped (killed, restarted):
        finish it if only the final record was missing, else roll back from its next step."""
        migration = self._store.load(UUID(migration_id), Migration)
        if migration.status != MigrationStatus.RUNNING:
            return migration.status
        context = CommandContext(
            actor=RUNNER_ACTOR, reason="the background worker running this migration stopped"
        )
        step = migration.next_step()
        if step is None:
            with recording(context, self._store.pool_id):
                migration.complete()
                self._store.store(migration)
            return migration.status
        model = self._store.load(UUID(migration.model_id), CatalogModel)
        target = self._store.load(UUID(migration.target_id), Worker)
        self._roll_back(
            migration, step, "interrupted: its background worker stopped", model, target, context
        )
        return migration.status

    def _do(
        self,
        step: Step,
        migration: Migration,
        model: CatalogModel,
        target: Worker,
        source: Worker | None,
        worker_online: Callable[[str], bool],
        progress: Callable[[int, int], None],
    ) -> tuple[str, bool]:
        if step == Step.DEPLOY:
            if target.removed or target.drained:
                raise PlacementError(f"{target.name} no longer takes models")
            self._placer.place(target.url, model, progress)
            return f"{model.reference} deployed on {target.name}", False
        if step == Step.VERIFY:
            self._placer.verify(target.url, model.reference)
            return f"{target.name} lists and describes {model.reference}", False
        if step == Step.SWITCH:
            self._switch(migration, target, source)
            return "the catalog now sends this model's traffic to " + target.name, False
        assert source is not None
        if source.removed or not worker_online(str(source.id)):
            return f"{source.name} is offline: its copy is left for when it returns", True
        try:
            self._placer.remove(source.url, model.reference)
        except PlacementError as error:
            return f"could not remove it from {source.name}: {error}", True
        return f"{model.reference} removed from {source.name}", False

    def _switch(self, migration: Migration, target: Worker, source: Worker | None) -> None:
        """Assignments change in the same transaction as the step: traffic moves at once."""
        for _ in range(3):
            model = self._store.load(UUID(migration.model_id), CatalogModel)
            context = CommandContext(actor=RUNNER_ACTOR, reason="migration: switch traffic")
            with recording(context, self._store.pool_id):
                model.assign(str(target.id))
                model.deployed(str(target.id))
                if source is not None and str(source.id) in model.deployments:
                    model.unassign(str(source.id))
                try:
                    self._store.store(model)
                    return
                except ConcurrencyConflict:
                    continue
        raise ConcurrencyConflict("the model kept changing while switching traffic")

    def _roll_back(
        self,
        migration: Migration,
        step: Step,
        error: str,
        model: CatalogModel,
        target: Worker,
        context: CommandContext,
    ) -> None:
        undone = "nothing to undo"
        if migration.done or step == Step.DEPLOY:
            try:
                current = self._store.load(UUID(migration.model_id), CatalogModel)
                if current.deployments.get(str(target.id)) != DeployState.DEPLOYED.value:
                    self._placer.remove(target.url, model.reference)
                undone = f"removed the partial copy from {target.name}"
            except Exception as cleanup:
                undone = f"could not remove the copy from {target.name}: {cleanup}"
        with recording(context, self._store.pool_id):
            migration.step_failed(step, error)
            self._store.store(migration)
        trouble = Trouble(
            cause=f"migration_failed:{migration.id}",
            kind=IncidentKind.MIGRATION_FAILED,
            severity=Severity.WARNING,
            title=f"Migration of {model.reference} to {target.name} failed at {step.value}",
            detail=f"{error}. Rolled back: {undone}.",
            subject=f"model:{model.id}",
        )
        incident, _ = self._incidents.report(
            trouble, context.caused_by(str(migration.id), RUNNER_ACTOR)
        )
        with recording(context, self._store.pool_id):
            migration.rolled_back(undone, str(incident.id))
            mails = self._mail.compose(
                f"rolled-back:{migration.id}",
                NoticeKind.MIGRATION,
                f"[Archipel] migration of {model.reference} rolled back",
                f"{trouble.title}: {trouble.detail}",
            )
            self._store.store(migration, *mails)
