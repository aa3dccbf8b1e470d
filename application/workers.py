"""Registering and steering workers, and the health automation's decisions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

from application.ports import AggregateStore
from domain.context import CommandContext, recording
from domain.errors import ConcurrencyConflict, DomainError, NotFound
from domain.workers import Worker, WorkerStatus, check_profile, normalise_url

HEALTH_ACTOR = "automation:health"
# Consecutive failed checks before a worker is declared offline (one blip is not an outage).
FAILURES_BEFORE_OFFLINE = 2


class WorkerUnreachable(DomainError):
    code = "worker_unreachable"


class NotOllama(DomainError):
    code = "not_ollama"


class DuplicateWorker(DomainError):
    code = "worker_exists"


@dataclass(frozen=True)
class ProbeResult:
    version: str
    models: list[str]


class OllamaProbe(Protocol):
    def probe(self, url: str) -> ProbeResult:
        """Check that `url` answers like Ollama; `WorkerUnreachable` or `NotOllama` if not."""
        ...


@dataclass(frozen=True)
class CheckResult:
    """One health check of one worker (what the checker saw)."""

    worker_id: str
    ok: bool
    reason: str = ""
    latency_ms: float | None = None
    version: str | None = None
    installed: list[str] | None = None
    loaded: list[str] = field(default_factory=list)
    inflight: int | None = None


class WorkerService:
    def __init__(self, store: AggregateStore, probe: OllamaProbe) -> None:
        self._store = store
        self._probe = probe

    def register(
        self, url: str, name: str, labels: list[str], capacity: int, context: CommandContext
    ) -> Worker:
        """Probe the URL first: nothing is recorded for an unreachable or non-Ollama server."""
        url = normalise_url(url)
        name, labels, capacity = check_profile(name, labels, capacity)
        existing = self._find(Worker.create_id(url))
        if existing is not None and not existing.removed:
            raise DuplicateWorker(f"a worker with URL {url} is already registered")
        self._probe.probe(url)
        with recording(context, self._store.pool_id):
            if existing is not None:
                existing.register_again(name, labels, capacity)
                worker = existing
            else:
                worker = Worker(url=url, name=name, labels=labels, capacity=capacity)
            try:
                self._store.store(worker)
            except ConcurrencyConflict:
                raise DuplicateWorker(f"a worker with URL {url} was just registered") from None
        return worker

    def get(self, worker_id: str) -> Worker:
        try:
            worker = self._find(UUID(worker_id))
        except ValueError:
            worker = None
        if worker is None:
            raise NotFound(f"no worker {worker_id}")
        return worker

    def edit(
        self,
        worker_id: str,
        name: str | None,
        labels: list[str] | None,
        capacity: int | None,
        context: CommandContext,
    ) -> Worker:
        worker = self.get(worker_id)
        with recording(context, self._store.pool_id):
            changed = worker.edit(
                worker.name if name is None else name,
                worker.labels if labels is None else labels,
                worker.capacity if capacity is None else capacity,
            )
            if changed:
                self._store.store(worker)
        return worker

    def drain(self, worker_id: str, context: CommandContext) -> Worker:
        return self._apply(worker_id, context, Worker.drain)

    def undrain(self, worker_id: str, context: CommandContext) -> Worker:
        return self._apply(worker_id, context, Worker.undrain)

    def remove(self, worker_id: str, context: CommandContext) -> Worker:
        return self._apply(worker_id, context, Worker.remove)

    def _apply(self, worker_id: str, context: CommandContext, change: object) -> Worker:
        worker = self.get(worker_id)
        with recording(context, self._store.pool_id):
            change(worker)  # type: ignore[operator]
            self._store.store(worker)
        return worker

    def _find(self, worker_id: UUID) -> Worker | None:
        try:
            return self._store.load(worker_id, Worker)
        except NotFound:
            return None


def verdict(result: CheckResult, failures_in_a_row: int) -> tuple[WorkerStatus, str] | None:
    """The status a check leads to, or None when it changes nothing yet."""
    if result.ok:
        return WorkerStatus.ONLINE, f"answered in {result.latency_ms or 0:.0f} ms"
    if failures_in_a_row >= FAILURES_BEFORE_OFFLINE:
        return WorkerStatus.OFFLINE, result.reason
    return None


class HealthAutomation:
    """Records status transitions decided from health checks (actor `automation:health`)."""

    def __init__(self, store: AggregateStore) -> None:
        self._store = store

    def apply(self, result: CheckResult, failures_in_a_row: int) -> bool:
        decision = verdict(result, failures_in_a_row)
        if decision is None:
            return False
        status, reason = decision
        try:
            worker = self._store.load(UUID(result.worker_id), Worker)
        except NotFound:
            return False
        context = CommandContext(actor=HEALTH_ACTOR, reason=reason[:500] or status.value)
        with recording(context, self._store.pool_id):
            if not worker.record_status(status, reason):
                return False
            try:
                self._store.store(worker)
            except ConcurrencyConflict:
                return False  # an admin changed it meanwhile; the next round decides again
        return True
