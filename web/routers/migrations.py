"""Migration orders: list with live steps, order a move or a drain, approve, reject, cancel."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, status

from domain.context import CommandContext
from domain.migrations import InvalidMigration, Migration
from infrastructure.operations import in_flight, migration_progress, models_on, worker_loads
from projections.operations import list_migrations
from web.deps import CurrentAdmin, Web
from web.schemas import MigrationCreate, MigrationPublic, MigrationsPublic, Noted

router = APIRouter(prefix="/api/migrations", tags=["migrations"])

MIGRATION_STATUSES = "^(proposed|pending|running|completed|rolled_back|rejected|cancelled)$"


def _names(web: Web) -> tuple[dict[str, str], dict[str, str]]:
    with web.pool.database.connection() as conn:
        workers = {
            str(r["id"]): r["name"] for r in conn.execute("SELECT id, name FROM workers_view")
        }
        models = {
            str(r["id"]): f"{r['name']}:{r['tag']}"
            for r in conn.execute("SELECT id, name, tag FROM models_view")
        }
    return workers, models


def migration_public(
    web: Web, row: dict[str, Any], workers: dict[str, str], models: dict[str, str]
) -> MigrationPublic:
    source = str(row["source_id"]) if row["source_id"] else None
    target = str(row["target_id"])
    progress = None
    if row["status"] == "running":
        live = migration_progress(web.pool, str(row["id"]))
        if live and live.get("total"):
            progress = min(1.0, live["done"] / live["total"])
    return MigrationPublic(
        id=str(row["id"]),
        kind=row["kind"],
        model_id=str(row["model_id"]),
        model=models.get(str(row["model_id"]), str(row["model_id"])),
        source_id=source,
        source_name=workers.get(source) if source else None,
        target_id=target,
        target_name=workers.get(target, target),
        status=row["status"],
        created_by=row["created_by"],
        reason=row["reason"],
        not_before=row["not_before"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        steps=row["steps"],
        progress=progress,
        error=row["error"],
        incident_id=str(row["incident_id"]) if row["incident_id"] else None,
    )


def _public(web: Web, migrations: list[Migration]) -> list[MigrationPublic]:
    web.pool.runner("operations").catch_up()  # read your own writes
    workers, models = _names(web)
    with web.pool.database.connection() as conn:
        rows = conn.execute(
            "SELECT * FROM migrations_view WHERE id = ANY(%s) ORDER BY created_at DESC",
            ([m.id for m in migrations],),
        ).fetchall()
    return [migration_public(web, row, workers, models) for row in rows]


@router.get("", operation_id="list_migrations", response_model=MigrationsPublic)
def list_all(
    *,
    current: CurrentAdmin,
    web: Web,
    status_filter: str | None = Query(default=None, alias="status", pattern=MIGRATION_STATUSES),
    limit: int = Query(default=200, ge=1, le=1000),
) -> MigrationsPublic:
    """Migration orders, newest first, each with its steps and live deployment progress."""
    workers, models = _names(web)
    with web.pool.database.connection() as conn:
        rows = list_migrations(conn, status_filter, limit)
    return MigrationsPublic(items=[migration_public(web, row, workers, models) for row in rows])


@router.post(
    "",
    operation_id="order_migration",
    response_model=MigrationsPublic,
    status_code=status.HTTP_201_CREATED,
)
def order(*, body: MigrationCreate, current: CurrentAdmin, web: Web) -> MigrationsPublic:
    """Move a model from one worker to another (now or at `not_before`), or drain a worker:
    it stops taking models and each of its models moves to the least loaded online worker."""
    context = current.context(body.reason)
    flights = in_flight(web.pool)
    if body.kind == "move":
        if not (body.model_id and body.source_id and body.target_id):
            raise InvalidMigration("a move needs model_id, source_id and target_id")
        migration = web.pool.migrations.order_move(
            body.model_id,
            body.source_id,
            body.target_id,
            body.not_before.isoformat() if body.not_before else None,
            context,
            lambda model_id: flights.get(model_id, set()),
        )
        return MigrationsPublic(items=_public(web, [migration]))
    if not body.worker_id:
        raise InvalidMigration("a drain needs worker_id")
    return MigrationsPublic(items=_public(web, drain(web, body.worker_id, context)))


def drain(web: Web, worker_id: str, context: CommandContext) -> list[Migration]:
    """Nothing changes unless every model of the worker has somewhere to go."""
    worker = web.pool.workers.get(worker_id)
    flights = in_flight(web.pool)

    def plan(dry_run: bool) -> tuple[list[Migration], list[str]]:
        return web.pool.migrations.plan_moves_off(
            worker_id,
            models_on(web.pool, worker_id),
            worker_loads(web.pool),
            lambda model_id: flights.get(model_id, set()),
            context.correlation_id,
            context,
            proposed=False,  # an admin's order needs no approval
            dry_run=dry_run,
        )

    _, stranded = plan(dry_run=True)
    if stranded:
        raise InvalidMigration(
            f"no online worker can take {', '.join(stranded)} from {worker.name}; "
            "add or free a worker first"
        )
    if worker.drained:
        # Drained by someone else (maybe the balancer, which undrains what it drained):
        # record the drain as this admin's, so it stays until an admin undrains it.
        web.pool.workers.undrain(worker_id, context)
    web.pool.workers.drain(worker_id, context)
    return plan(dry_run=False)[0]


def _decide(web: Web, migration_id: str, body: Noted, current: CurrentAdmin, verb: str) -> Any:
    change = getattr(web.pool.migrations, verb)
    migration = change(migration_id, current.context(body.reason))
    return _public(web, [migration])[0]


@router.post(
    "/{migration_id}/approve", operation_id="approve_migration", response_model=MigrationPublic
)
def approve(*, migration_id: str, body: Noted, current: CurrentAdmin, web: Web) -> Any:
    """Let a proposed migration run (manual failover mode)."""
    return _decide(web, migration_id, body, current, "approve")


@router.post(
    "/{migration_id}/reject", operation_id="reject_migration", response_model=MigrationPublic
)
def reject(*, migration_id: str, body: Noted, current: CurrentAdmin, web: Web) -> Any:
    """Turn a proposed migration down."""
    return _decide(web, migration_id, body, current, "reject")


@router.post(
    "/{migration_id}/cancel", operation_id="cancel_migration", response_model=MigrationPublic
)
def cancel(*, migration_id: str, body: Noted, current: CurrentAdmin, web: Web) -> Any:
    """Cancel a migration that has not started."""
    return _decide(web, migration_id, body, current, "cancel")
