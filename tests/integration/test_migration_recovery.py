"""A migration whose background worker died mid-way is rolled back, not left running."""

from __future__ import annotations

from domain.catalog import CatalogModel
from domain.context import CommandContext, recording
from domain.migrations import Migration, MigrationStatus, Step
from domain.workers import Worker
from infrastructure.bootstrap import Pool
from infrastructure.operations import MIGRATION_LEASE, recover_interrupted_migrations

ADMIN = CommandContext(actor="admin:alice", reason="move it")


def running_migration(pool: Pool) -> Migration:
    with recording(ADMIN, pool.pool_id):
        # Port 1 refuses at once: the rollback's clean-up fails fast, and says so.
        source = Worker(url="http://127.0.0.1:1", name="src", labels=[], capacity=1)
        target = Worker(url="http://127.0.0.2:1", name="dst", labels=[], capacity=1)
        model = CatalogModel(
            name="tiny",
            tag="1b",
            digest=None,
            size=0,
            metadata={},
            capabilities=["chat"],
            notes="",
            source="library",
        )
        model.assign(str(source.id))
        migration = Migration(
            cause="c-1",
            kind="move",
            model_id=str(model.id),
            source_id=str(source.id),
            target_id=str(target.id),
            not_before=None,
            proposed=False,
            incident_id=None,
        )
        migration.start()
        migration.step_done(Step.DEPLOY, "deployed")
    pool.store.store(source, target, model, migration)
    return migration


def test_an_interrupted_migration_is_rolled_back_once_its_lease_lapses(pool: Pool) -> None:
    migration = running_migration(pool)
    pool.runner("operations").catch_up()
    lease = f"{MIGRATION_LEASE}{migration.id}"

    pool.redis.set(lease, "1", ex=60)  # its worker is alive: left alone
    assert recover_interrupted_migrations(pool, quiet_seconds=0) == 0
    pool.redis.delete(lease)  # the worker died: the lease lapses
    assert recover_interrupted_migrations(pool, quiet_seconds=0) == 1

    recovered = pool.store.load(migration.id, Migration)
    assert recovered.status == MigrationStatus.ROLLED_BACK
    assert recovered.incident_id is not None
    pool.runner("operations").catch_up()
    with pool.database.connection() as conn:
        row = conn.execute(
            "SELECT status, steps FROM migrations_view WHERE id = %s", (migration.id,)
        ).fetchone()
        incident = conn.execute(
            "SELECT kind, detail FROM incidents_view WHERE id = %s", (recovered.incident_id,)
        ).fetchone()
    assert row["status"] == "rolled_back"
    assert [s["status"] for s in row["steps"]][:2] == ["rolled_back", "failed"]
    assert incident["kind"] == "migration_failed" and "interrupted" in incident["detail"]
    # Once finished it is never touched again.
    assert recover_interrupted_migrations(pool, quiet_seconds=0) == 0
