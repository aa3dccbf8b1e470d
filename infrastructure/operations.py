"""The pool's self-running side: incidents from what automations see, failover, migrations,
the balancer, the failsafe, mail, and the record of each automation's runs."""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from typing import TYPE_CHECKING, Any

from application.balancer import ModelPlacement
from application.incidents import Trouble
from application.mail import MailError
from application.migrations import WorkerLoad
from domain.automations import AutomationDecision
from domain.context import CommandContext, recording
from domain.incidents import IncidentKind
from domain.notifications import Severity
from domain.workers import Worker
from projections.framework import NOTICE_CHANNEL
from projections.operations import due_migrations, migrations_in_flight, overdue_incidents
from projections.workers import list_workers

if TYPE_CHECKING:
    from infrastructure.bootstrap import Pool

log = logging.getLogger(__name__)

RUNS_KEY = "archipel:automation-runs"
MIGRATION_PROGRESS = "archipel:migration:"
FAILOVER_ACTOR = "automation:failover"


# Runs ------------------------------------------------------------------------------------


NOTICE_EVERY_SECONDS = 30.0


def note_run(pool: Pool, automation: str, started: float, error: str | None = None) -> None:
    """Remember an automation's last run (operational state, shown on the Automations page).

    Every admin's stream gets a notice when the run's outcome changes (an error appears or
    goes away), else at most every 30 s per automation: replication runs every 3 s, and a
    notice per run to every connected dashboard would crowd the live stream."""
    raw = pool.redis.hget(RUNS_KEY, automation)
    before: dict[str, Any] = json.loads(raw) if raw else {}
    now = time.time()
    announce = (
        before.get("error") != error
        or now - float(before.get("announced_at") or 0) >= NOTICE_EVERY_SECONDS
    )
    record = {
        "at": started,
        "duration_ms": round((now - started) * 1000),
        "error": error,
        "announced_at": now if announce else before.get("announced_at"),
    }
    pool.redis.hset(RUNS_KEY, automation, json.dumps(record))
    if announce:
        head = int(pool.store.recorder.max_notification_id() or 0)
        pool.redis.publish(
            NOTICE_CHANNEL,
            json.dumps([{"view": "automations", "key": automation, "position": head}]),
        )


def last_runs(pool: Pool) -> dict[str, dict[str, Any]]:
    raw = pool.redis.hgetall(RUNS_KEY)
    return {_text(k): json.loads(v) for k, v in raw.items()}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


# Live state of the pool's workers ----------------------------------------------------------


def worker_loads(pool: Pool) -> list[WorkerLoad]:
    with pool.database.connection() as conn:
        rows = list_workers(conn)
    live = pool.telemetry.read([str(r["id"]) for r in rows])
    loads = []
    for row in rows:
        seen = live.get(str(row["id"])) or {}
        loads.append(
            WorkerLoad(
                id=str(row["id"]),
                name=row["name"],
                online=row["status"] == "online",
                drained=row["drained"],
                inflight=int(seen.get("inflight") or 0),
                capacity=int(row["capacity"]),
            )
        )
    return loads


def placements(pool: Pool) -> list[ModelPlacement]:
    with pool.database.connection() as conn:
        rows = conn.execute(
            """SELECT m.id, m.name || ':' || m.tag AS reference,
                      coalesce(array_agg(d.worker_id::text) FILTER (WHERE d.worker_id IS NOT NULL),
                               '{}') AS workers
               FROM models_view m LEFT JOIN deployments_view d ON d.model_id = m.id
               WHERE NOT m.retired GROUP BY m.id, m.name, m.tag"""
        ).fetchall()
    return [ModelPlacement(str(r["id"]), r["reference"], list(r["workers"])) for r in rows]


def models_on(pool: Pool, worker_id: str) -> list[str]:
    with pool.database.connection() as conn:
        rows = conn.execute(
            "SELECT model_id FROM deployments_view WHERE worker_id = %s", (worker_id,)
        ).fetchall()
    return [str(r["model_id"]) for r in rows]


def in_flight(pool: Pool) -> dict[str, set[str]]:
    with pool.database.connection() as conn:
        return migrations_in_flight(conn)


# Event-driven work -----------------------------------------------------------------------


def worker_status_changed(pool: Pool, message: dict[str, Any]) -> None:
    """Offline: open (or count) the worker's incident and fail over its models.
    Online again: resolve the incident."""
    worker = pool.workers.get(message["aggregate_id"])
    status, why = message["payload"]["status"], message["payload"]["reason"]
    if worker.status.value != status:
        return  # a late or redelivered message: the worker has moved on since
    cause = f"worker_offline:{worker.id}"
    context = CommandContext(
        actor="automation:health",
        reason=f"{worker.name} is {status}: {why}"[:2000],
        correlation_id=str(message["meta"].get("correlation_id") or message["event_id"]),
        causation_id=message["event_id"],
    )
    if status == "online":
        pool.incidents.clear(cause, f"{worker.name} answers again ({why})", context)
        return
    if status != "offline" or worker.removed:
        return
    incident, _ = pool.incidents.report(
        Trouble(
            cause=cause,
            kind=IncidentKind.WORKER_OFFLINE,
            severity=Severity.CRITICAL,
            title=f"Worker {worker.name} is offline",
            detail=f"{worker.url}: {why}",
            subject=f"worker:{worker.id}",
        ),
        context,
    )
    fail_over(pool, str(worker.id), message["event_id"], str(incident.id))


def fail_over(pool: Pool, worker_id: str, cause: str, incident_id: str | None) -> None:
    started = time.time()
    if not pool.settings.bool_value("cluster.worker_migrations_enabled"):
        return
    flights = in_flight(pool)
    orders, stranded = pool.migrations.plan_moves_off(
        worker_id,
        models_on(pool, worker_id),
        worker_loads(pool),
        lambda model_id: flights.get(model_id, set()),
        cause,
        CommandContext(
            actor=FAILOVER_ACTOR,
            reason="the worker went offline; its models move to online workers",
            causation_id=cause,
        ),
        incident_id=incident_id,
    )
    if stranded:
        context = CommandContext(
            actor=FAILOVER_ACTOR,
            reason=f"no online worker can take {', '.join(stranded)}"[:2000],
            causation_id=cause,
        )
        with recording(context, pool.pool_id):
            pool.store.store(
                AutomationDecision(
                    automation="failover",
                    action="no_target",
                    inputs={"worker_id": worker_id, "stranded": stranded},
                )
            )
    if orders or stranded:
        note_run(pool, "failover", started)


MIGRATION_LEASE = "archipel:migration-lease:"
LEASE_SECONDS = 60


def run_migration(pool: Pool, migration_id: str) -> None:
    if not pool.settings.bool_value("cluster.worker_migrations_enabled"):
        return  # stays pending; the periodic check starts it once migrations are on
    started = time.time()
    # A lease renewed while this runs: if the process dies, it lapses and the periodic check
    # rolls the migration back instead of leaving it `running` for ever.
    lease = f"{MIGRATION_LEASE}{migration_id}"
    done = threading.Event()

    def hold_lease() -> None:
        while not done.is_set():
            pool.redis.set(lease, "1", ex=LEASE_SECONDS)
            done.wait(LEASE_SECONDS / 3)

    holder = threading.Thread(target=hold_lease, name=f"lease-{migration_id}", daemon=True)
    holder.start()
    key = f"{MIGRATION_PROGRESS}{migration_id}"
    last_sent = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last_sent[0] < 0.25 and done < total:
            return
        last_sent[0] = now
        pool.redis.set(key, json.dumps({"done": done, "total": total}), ex=3600)
        _migration_notice(pool, migration_id)

    online = {w.id for w in worker_loads(pool) if w.online}
    try:
        pool.migration_runner.run(migration_id, lambda w: w in online, progress)
    finally:
        done.set()
        holder.join(timeout=5)
        pool.redis.delete(key)
        note_run(pool, "migrations", started)


def migration_progress(pool: Pool, migration_id: str) -> dict[str, int] | None:
    raw = pool.redis.get(f"{MIGRATION_PROGRESS}{migration_id}")
    return json.loads(raw) if raw else None


def _migration_notice(pool: Pool, migration_id: str) -> None:
    head = int(pool.store.recorder.max_notification_id() or 0)
    pool.redis.publish(
        NOTICE_CHANNEL, json.dumps([{"view": "migrations", "key": migration_id, "position": head}])
    )


def send_mail(pool: Pool, message: dict[str, Any]) -> None:
    """One attempt; `MailError` goes back to Dramatiq, which retries with backoff."""
    try:
        pool.mail.deliver(message["aggregate_id"], message["event_id"])
    except MailError as error:
        log.warning("mail %s not sent yet: %s", message["aggregate_id"], error.answer)
        raise


# Periodic work ---------------------------------------------------------------------------


def start_due_migrations(pool: Pool) -> int:
    recover_interrupted_migrations(pool)
    with pool.database.connection() as conn:
        due = due_migrations(conn)
    for migration_id in due:
        pool.background.enqueue("run_migration", {"aggregate_id": migration_id})
    return len(due)


def recover_interrupted_migrations(pool: Pool, quiet_seconds: float = LEASE_SECONDS) -> int:
    """Roll back the `running` migrations nobody holds a lease on any more."""
    with pool.database.connection() as conn:
        rows = conn.execute(
            """SELECT id FROM migrations_view WHERE status = 'running'
                 AND updated_at < now() - make_interval(secs => %s)""",
            (quiet_seconds,),
        ).fetchall()
    recovered = 0
    for row in rows:
        if not pool.redis.exists(f"{MIGRATION_LEASE}{row['id']}"):
            pool.migration_runner.recover(str(row["id"]))
            recovered += 1
    return recovered


def escalate_overdue(pool: Pool) -> int:
    delay = pool.settings.int_value("cluster.failsafe_escalation_delay_seconds")
    with pool.database.connection() as conn:
        overdue = overdue_incidents(conn, delay)
    public_url = pool.public_url()
    return sum(pool.failsafe.escalate_overdue(i, delay, public_url) for i in overdue)


def balance(pool: Pool) -> str:
    cooldown = pool.settings.int_value("cluster.balancer_cooldown_seconds")
    with pool.database.connection() as conn:
        cooling = {
            str(r["model_id"])
            for r in conn.execute(
                """SELECT model_id FROM migrations_view WHERE created_by = 'automation:balancer'
                   AND created_at > now() - make_interval(secs => %s)""",
                (cooldown,),
            ).fetchall()
        }
        last = conn.execute(
            """SELECT reason FROM audit_log WHERE actor = 'automation:balancer'
               ORDER BY occurred_at DESC, position DESC LIMIT 1"""
        ).fetchone()
        # Workers whose last drain or undrain was the balancer's own drain.
        drained_by_balancer = frozenset(
            str(r["aggregate_id"])
            for r in conn.execute(
                """SELECT DISTINCT ON (aggregate_id) aggregate_id, event_type, actor
                   FROM audit_log WHERE event_type IN ('Drained', 'Undrained')
                   ORDER BY aggregate_id, position DESC"""
            ).fetchall()
            if r["event_type"] == "Drained" and r["actor"] == "automation:balancer"
        )
    decision = pool.balancer.run(
        worker_loads(pool),
        placements(pool),
        pool.settings.float_value("cluster.balancer_imbalance_threshold"),
        cooling,
        set(in_flight(pool)),
        lambda: last["reason"] if last else None,
        drained_by_balancer,
    )
    return decision.action


def watch_disk(pool: Pool) -> None:
    """An incident while the data directory's disk is below the free-space flag."""
    usage = shutil.disk_usage(pool.config.data_dir)
    free = usage.free * 100 / usage.total
    floor = pool.settings.int_value("pool.disk_space_low_percent")
    cause = f"disk_space_low:{pool.config.data_dir}"
    context = CommandContext(actor="automation:disk", reason=f"{free:.1f}% free (floor {floor}%)")
    if free >= floor:
        pool.incidents.clear(cause, f"{free:.1f}% free again", context)
        return
    pool.incidents.report(
        Trouble(
            cause=cause,
            kind=IncidentKind.DISK_SPACE_LOW,
            severity=Severity.CRITICAL if free < floor / 2 else Severity.WARNING,
            title=f"Disk space low for {pool.config.data_dir}",
            # Coarse figures: a detail that changes every minute would be an event every minute.
            detail=f"{usage.free / 2**30:.0f} GiB free of {usage.total / 2**30:.0f} GiB "
            f"({free:.0f}%, below {floor}%)",
            subject="pool",
        ),
        context,
    )


def peer_trouble(pool: Pool, peer_id: str, error: str | None) -> None:
    """A pull from a peer failed (incident) or went through (resolve)."""
    cause = f"peer_unreachable:{peer_id}"
    context = CommandContext(actor="automation:replication", reason=(error or "answered")[:2000])
    if error is None:
        pool.incidents.clear(cause, "the peer answers again", context)
        return
    pool.incidents.report(
        Trouble(
            cause=cause,
            kind=IncidentKind.PEER_UNREACHABLE,
            severity=Severity.WARNING,
            title=f"Paired pool {peer_id} does not answer",
            detail=error,
            subject=f"peer:{peer_id}",
        ),
        context,
    )


def deploy_trouble(
    pool: Pool, reference: str, model_id: str, worker: Worker, cause: str, error: str | None
) -> None:
    """A deployment failed (incident, one per model and worker) or finally went through."""
    key = f"deploy_failed:{model_id}:{worker.id}"
    context = CommandContext(
        actor="automation:deploy", reason=(error or "deployed")[:2000], causation_id=cause
    )
    if error is None:
        pool.incidents.clear(key, f"{reference} is deployed on {worker.name}", context)
        return
    pool.incidents.report(
        Trouble(
            cause=key,
            kind=IncidentKind.DEPLOY_FAILED,
            severity=Severity.WARNING,
            title=f"Deploying {reference} on {worker.name} failed",
            detail=f"{error} (retried with backoff)",
            subject=f"model:{model_id}",
        ),
        context,
    )
