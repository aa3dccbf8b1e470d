"""Workers: register, edit, drain, remove; list with live telemetry; the pool's topology."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, status

from projections.audit import query_audit
from projections.workers import get_worker_row, list_workers
from web.deps import CurrentAdmin, Web, pool_identity
from web.schemas import (
    AuditEntryPublic,
    PeerPoolPublic,
    Reasoned,
    TopologyPublic,
    WorkerCounts,
    WorkerCreate,
    WorkerDetailPublic,
    WorkerPublic,
    WorkersPublic,
    WorkerUpdate,
)

router = APIRouter(prefix="/api/workers", tags=["workers"])
topology_router = APIRouter(prefix="/api/topology", tags=["topology"])


def worker_public(row: dict[str, Any], live: dict[str, Any] | None) -> WorkerPublic:
    live = live or {}
    online = row["status"] == "online"
    inflight = live.get("inflight") if online else None
    activity = "unknown" if inflight is None else ("busy" if inflight > 0 else "idle")
    checked = live.get("checked_at")
    return WorkerPublic(
        id=str(row["id"]),
        url=row["url"],
        name=row["name"],
        labels=list(row["labels"]),
        capacity=row["capacity"],
        status=row["status"],
        status_reason=row["status_reason"],
        status_since=row["status_since"],
        drained=row["drained"],
        activity=activity,
        inflight=inflight,
        latency_ms=live.get("latency_ms") if online else None,
        version=live.get("version"),
        installed_models=live.get("installed") or [],
        loaded_models=live.get("loaded") or [] if online else [],
        checked_at=datetime.fromtimestamp(checked, UTC) if checked else None,
    )


def counts(workers: list[WorkerPublic]) -> WorkerCounts:
    def n(predicate: Any) -> int:
        return sum(1 for w in workers if predicate(w))

    return WorkerCounts(
        total=len(workers),
        online=n(lambda w: w.status == "online"),
        busy=n(lambda w: w.activity == "busy"),
        idle=n(lambda w: w.status == "online" and w.activity != "busy"),
        offline=n(lambda w: w.status == "offline"),
        unknown=n(lambda w: w.status == "unknown"),
        drained=n(lambda w: w.drained),
    )


def all_workers(web: Web) -> list[WorkerPublic]:
    with web.pool.database.connection() as conn:
        rows = list_workers(conn)
    live = web.pool.telemetry.read([str(r["id"]) for r in rows])
    return [worker_public(row, live.get(str(row["id"]))) for row in rows]


def _one(web: Web, worker_id: str) -> WorkerPublic:
    web.pool.runner("workers").catch_up()  # read your own writes
    with web.pool.database.connection() as conn:
        row = get_worker_row(conn, worker_id)
    assert row is not None
    return worker_public(row, web.pool.telemetry.read([worker_id]).get(worker_id))


@router.get("", operation_id="list_workers", response_model=WorkersPublic)
def list_all(*, current: CurrentAdmin, web: Web) -> WorkersPublic:
    """Every registered worker with its status and live telemetry, and the counts."""
    workers = all_workers(web)
    return WorkersPublic(items=workers, counts=counts(workers))


@router.post(
    "",
    operation_id="register_worker",
    response_model=WorkerPublic,
    status_code=status.HTTP_201_CREATED,
    responses={422: {"description": "Bad input, unreachable URL or not Ollama"}},
)
def register(*, body: WorkerCreate, current: CurrentAdmin, web: Web) -> WorkerPublic:
    """Register an Ollama worker by URL (it is probed first: nothing is recorded if it fails)."""
    worker = web.pool.workers.register(
        body.url, body.name, body.labels, body.capacity, current.context(body.reason)
    )
    return _one(web, str(worker.id))


@router.get("/{worker_id}", operation_id="get_worker", response_model=WorkerDetailPublic)
def get_one(*, worker_id: str, current: CurrentAdmin, web: Web) -> WorkerDetailPublic:
    """One worker, its telemetry and its event history (newest first)."""
    worker = web.pool.workers.get(worker_id)
    with web.pool.database.connection() as conn:
        entries = query_audit(conn, limit=100, aggregate_id=str(worker.id))
    public = _one(web, worker_id)
    return WorkerDetailPublic(
        **public.model_dump(), history=[AuditEntryPublic(**e.as_json()) for e in entries]
    )


@router.patch("/{worker_id}", operation_id="edit_worker", response_model=WorkerPublic)
def edit(*, worker_id: str, body: WorkerUpdate, current: CurrentAdmin, web: Web) -> WorkerPublic:
    """Change a worker's name, labels or capacity."""
    web.pool.workers.edit(
        worker_id, body.name, body.labels, body.capacity, current.context(body.reason)
    )
    return _one(web, worker_id)


@router.post("/{worker_id}/drain", operation_id="drain_worker", response_model=WorkerPublic)
def drain(*, worker_id: str, body: Reasoned, current: CurrentAdmin, web: Web) -> WorkerPublic:
    """Stop sending new work to this worker (work in progress finishes)."""
    web.pool.workers.drain(worker_id, current.context(body.reason))
    return _one(web, worker_id)


@router.post("/{worker_id}/undrain", operation_id="undrain_worker", response_model=WorkerPublic)
def undrain(*, worker_id: str, body: Reasoned, current: CurrentAdmin, web: Web) -> WorkerPublic:
    """Send work to this worker again."""
    web.pool.workers.undrain(worker_id, current.context(body.reason))
    return _one(web, worker_id)


@router.post(
    "/{worker_id}/remove", operation_id="remove_worker", status_code=status.HTTP_204_NO_CONTENT
)
def remove(*, worker_id: str, body: Reasoned, current: CurrentAdmin, web: Web) -> None:
    """Remove a worker from the pool (its history stays in the audit trail)."""
    web.pool.workers.remove(worker_id, current.context(body.reason))
    web.pool.runner("workers").catch_up()  # the next list no longer shows it


@topology_router.get("", operation_id="get_topology", response_model=TopologyPublic)
def topology(*, current: CurrentAdmin, web: Web) -> TopologyPublic:
    """The pool, its workers and their models, live; and the paired pools with the health of
    each replication link."""
    workers = all_workers(web)
    return TopologyPublic(
        pool=pool_identity(web), workers=workers, counts=counts(workers), peers=peer_pools(web)
    )


SILENT_AFTER_SECONDS = 30


def peer_pools(web: Web) -> list[PeerPoolPublic]:
    with web.pool.database.connection() as conn:
        rows = conn.execute(
            """SELECT p.pool_id, p.name, p.url, p.status,
                      coalesce(pp.origin_head_seq, 0) - coalesce(pp.seq, 0) AS lag,
                      extract(epoch FROM now() - pp.last_seen_at) AS silent_for,
                      count(c.worker_id) FILTER (WHERE NOT c.removed) AS total,
                      count(c.worker_id) FILTER (WHERE NOT c.removed AND c.status = 'online')
                        AS online,
                      count(c.worker_id) FILTER (WHERE NOT c.removed AND c.status = 'offline')
                        AS offline
               FROM peers_view p
               LEFT JOIN peer_positions pp ON pp.origin = p.pool_id
               LEFT JOIN cluster_workers_view c ON c.pool_id = p.pool_id
               WHERE p.status <> 'unpaired'
               GROUP BY p.pool_id, p.name, p.url, p.status, pp.origin_head_seq, pp.seq,
                        pp.last_seen_at
               ORDER BY p.name"""
        ).fetchall()

    def link(row: dict[str, object]) -> str:
        if row["status"] == "quarantined":
            return "quarantined"
        silent = row["silent_for"]
        if silent is None or float(silent) > SILENT_AFTER_SECONDS:  # type: ignore[arg-type]
            return "silent"
        return "lagging" if int(row["lag"]) > 0 else "healthy"  # type: ignore[call-overload]

    return [
        PeerPoolPublic(
            pool_id=r["pool_id"],
            name=r["name"],
            url=r["url"],
            link=link(r),
            lag_events=max(0, int(r["lag"])),
            workers_online=r["online"],
            workers_offline=r["offline"],
            workers_total=r["total"],
        )
        for r in rows
    ]
