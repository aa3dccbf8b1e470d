"""The background automations' actors, and the health-check round they run."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from uuid import UUID

from application.workers import verdict
from domain.context import CommandContext
from domain.federation import Peer
from infrastructure import operations
from infrastructure.catalog_sync import sync_catalog
from infrastructure.deployer import DeployError
from infrastructure.federation import FederationRefused, PeerUnreachable
from infrastructure.replication import backing_off, pull
from projections.framework import NOTICE_CHANNEL
from projections.workers import list_workers

if TYPE_CHECKING:
    from infrastructure.bootstrap import Pool

log = logging.getLogger(__name__)

ROUND_LOCK = "archipel:health:round"
PEER_FAILURES = "archipel:peer-failures:"
TELEMETRY_VIEW = "telemetry"


def register_actors(pool: Pool) -> None:
    background = pool.background

    def announce_flag_change(message: dict[str, Any]) -> None:
        pool.notifier.announce_flag_change(message["payload"], message["meta"])

    def check_workers(message: dict[str, Any]) -> None:
        run_health_round(pool)

    def deploy_model(message: dict[str, Any]) -> None:
        deploy(pool, message["aggregate_id"], message["payload"]["worker_id"], message["event_id"])

    def undeploy_model(message: dict[str, Any]) -> None:
        undeploy(pool, message["aggregate_id"], message["payload"]["worker_id"])

    background.register("announce_flag_change", announce_flag_change)
    background.register("check_workers", check_workers)

    def pull_peers(message: dict[str, Any]) -> None:
        if not pool.settings.bool_value("federation.replication_enabled"):
            return  # a notify from a peer must not start what the flag turned off
        for peer_id in message.get("peers") or paired_peers(pool):
            if backing_off(pool, peer_id):
                continue
            try:
                pull(pool, peer_id)
            except PeerUnreachable as error:
                log.warning("replication from %s: %s", peer_id, error)
                # Three failed pulls in a row (not one blip) make an incident.
                if int(pool.redis.incr(f"{PEER_FAILURES}{peer_id}")) >= 3:
                    operations.peer_trouble(pool, peer_id, str(error))
            except FederationRefused as error:
                log.warning("replication from %s: %s", peer_id, error)
            else:
                if pool.redis.delete(f"{PEER_FAILURES}{peer_id}"):
                    operations.peer_trouble(pool, peer_id, None)
        sync_catalog(pool)  # a satellite follows what the master's log brought

    def notify_peers(message: dict[str, Any]) -> None:
        for peer_id in paired_peers(pool):
            peer = pool.federation.get(peer_id)
            with contextlib.suppress(FederationRefused):
                pool.peer_client.call(
                    peer.url, peer_id, "POST", "/federation/v1/notify", {}, timeout=5
                )

    def introduce_peer(message: dict[str, Any]) -> None:
        peer = pool.store.load(UUID(message["aggregate_id"]), Peer)
        introduce(pool, peer.peer_pool_id)

    # Periodic automations: the scheduler enqueues `run_automation` with the automation's id.
    periodic: dict[str, Callable[[], object]] = {
        "health": lambda: run_health_round(pool),
        "replication": lambda: pull_peers({}),
        "peer_purge": lambda: purge_inactive_peers(pool),
        "balancer": lambda: operations.balance(pool),
        "failsafe": lambda: operations.escalate_overdue(pool),
        "migrations": lambda: operations.start_due_migrations(pool),
        "disk_watch": lambda: operations.watch_disk(pool),
    }

    def run_automation(message: dict[str, Any]) -> None:
        started = time.time()
        try:
            periodic[message["id"]]()
        except Exception as error:
            operations.note_run(pool, message["id"], started, f"{type(error).__name__}: {error}")
            raise
        operations.note_run(pool, message["id"], started)

    # No retries: the next tick is the retry.
    background.register("run_automation", run_automation, max_retries=0)
    background.register("introduce_peer", introduce_peer)
    background.register(
        "worker_status_changed", lambda message: operations.worker_status_changed(pool, message)
    )

    def announce_incident(message: dict[str, Any]) -> None:
        pool.failsafe.announce(message["aggregate_id"], message["event_id"], pool.public_url())

    background.register("announce_incident", announce_incident)
    background.register("send_mail", lambda message: operations.send_mail(pool, message))
    background.register(
        "run_migration", lambda message: operations.run_migration(pool, message["aggregate_id"])
    )
    background.register("pull_peers", pull_peers)
    background.register("notify_peers", notify_peers)
    background.register("deploy_model", deploy_model)
    background.register("undeploy_model", undeploy_model)


def introduce(pool: Pool, newcomer_id: str | None) -> int:
    """Auto-pairing: introduce a new peer to every other peer, which then pair directly.

    Each other peer is asked (signed) for an invite code meant for the newcomer; the newcomer
    gets the code and that peer's URL (signed), and pairs itself. Both must have auto-pairing
    on, and so must this pool.
    """
    if newcomer_id is None or not pool.settings.bool_value("federation.auto_pairing"):
        return 0
    newcomer = pool.federation.find(newcomer_id)
    if newcomer is None or str(newcomer.status) != "paired":
        return 0
    introduced = 0
    for other_id in paired_peers(pool):
        if other_id == newcomer_id:
            continue
        other = pool.federation.get(other_id)
        # Always the same direction for a pair (the smaller pool id asks), so that two
        # introductions of the same pair, sent from both sides of the mesh, never cross.
        asker, host = sorted((newcomer, other), key=lambda peer: peer.peer_pool_id)
        with contextlib.suppress(FederationRefused):
            answer = pool.peer_client.call(
                host.url,
                host.peer_pool_id,
                "POST",
                "/federation/v1/introductions",
                {"for_pool": asker.peer_pool_id},
            )
            if answer.status_code != 200:
                continue
            code = answer.json()["code"]
            told = pool.peer_client.call(
                asker.url,
                asker.peer_pool_id,
                "POST",
                "/federation/v1/introduce",
                {"pool_id": host.peer_pool_id, "url": host.url, "code": code},
            )
            introduced += told.status_code == 200
    return introduced


def paired_peers(pool: Pool) -> list[str]:
    with pool.database.connection() as conn:
        rows = conn.execute("SELECT pool_id FROM peers_view WHERE status = 'paired'").fetchall()
    return [str(row["pool_id"]) for row in rows]


def purge_inactive_peers(pool: Pool) -> list[str]:
    """Unpair peers unseen for longer than the threshold flag (actor `automation:purge`)."""
    if not pool.settings.bool_value("federation.auto_purge_inactive_peers"):
        return []
    hours = pool.settings.int_value("federation.peer_inactivity_threshold_hours")
    with pool.database.connection() as conn:
        rows = conn.execute(
            """SELECT p.pool_id, coalesce(pp.last_seen_at, p.paired_at) AS seen
               FROM peers_view p LEFT JOIN peer_positions pp ON pp.origin = p.pool_id
               WHERE p.status <> 'unpaired'
                 AND coalesce(pp.last_seen_at, p.paired_at) < now() - make_interval(hours => %s)""",
            (hours,),
        ).fetchall()
    purged = []
    for row in rows:
        reason = f"not seen since {row['seen']:%Y-%m-%d %H:%M} UTC (threshold {hours} h)"
        pool.federation.unpair(
            row["pool_id"], CommandContext(actor="automation:purge", reason=reason)
        )
        purged.append(str(row["pool_id"]))
    return purged


def run_health_round(pool: Pool) -> int:
    """Check every registered worker once; returns how many were checked.

    Rounds never overlap (a Redis lock): if one is still running when the next is due, the
    next is skipped rather than piled up.
    """
    interval = pool.settings.int_value("workers.health_check_interval_seconds")
    if not pool.redis.set(ROUND_LOCK, "1", nx=True, ex=max(10, interval * 3)):
        return 0
    try:
        with pool.database.connection() as conn:
            rows = list_workers(conn)
        results = pool.health_checker().check([(str(r["id"]), r["url"]) for r in rows])
        streaks = pool.telemetry.record(results, ttl_seconds=max(30, interval * 3))
        known = {str(row["id"]): row["status"] for row in rows}
        for result in results:
            decision = verdict(result, streaks.get(result.worker_id, 0))
            if decision is not None and decision[0].value != known.get(result.worker_id):
                pool.health.apply(result, streaks.get(result.worker_id, 0))
        head = int(pool.store.recorder.max_notification_id() or 0)
        pool.redis.publish(
            NOTICE_CHANNEL, json.dumps([{"view": TELEMETRY_VIEW, "key": "*", "position": head}])
        )
        return len(results)
    finally:
        pool.redis.delete(ROUND_LOCK)


DEPLOY_PROGRESS = "archipel:deploy:"
DEPLOYMENTS_VIEW = "deployments"


def deploy(pool: Pool, model_id: str, worker_id: str, cause: str) -> None:
    """Put a model on a worker; a failure is recorded, then raised so Dramatiq retries."""
    if not pool.deployments.still_wanted(model_id, worker_id):
        return  # unassigned meanwhile, or already deployed (a redelivery)
    model = pool.catalog.get(model_id)
    worker = pool.workers.get(worker_id)
    key = f"{DEPLOY_PROGRESS}{model_id}:{worker_id}"
    last_sent = [0.0]

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last_sent[0] < 0.25 and done < total:
            return  # a notice four times a second is live enough
        last_sent[0] = now
        pool.redis.set(key, json.dumps({"done": done, "total": total}), ex=3600)
        _notify(pool, model_id)

    attempt = int(pool.redis.incr(f"{key}:attempts"))
    pool.redis.expire(f"{key}:attempts", 86400)
    try:
        pool.deployer.place(worker.url, model, progress)
    except DeployError as error:
        log.warning(
            "deploying %s on %s failed (attempt %d): %s",
            model.reference,
            worker.name,
            attempt,
            error,
        )
        pool.deployments.failed(model_id, worker_id, str(error), attempt, cause)
        operations.deploy_trouble(pool, model.reference, model_id, worker, cause, str(error))
        raise  # Dramatiq retries with backoff; the steps above are idempotent
    pool.deployments.succeeded(model_id, worker_id, cause)
    if attempt > 1:
        operations.deploy_trouble(pool, model.reference, model_id, worker, cause, None)
    pool.redis.delete(key, f"{key}:attempts")
    _notify(pool, model_id)


def undeploy(pool: Pool, model_id: str, worker_id: str) -> None:
    model = pool.catalog.get(model_id)
    worker = pool.workers.get(worker_id)
    if not worker.removed:
        pool.deployer.remove(worker.url, model.reference)
    pool.redis.delete(f"{DEPLOY_PROGRESS}{model_id}:{worker_id}")
    _notify(pool, model_id)


def deploy_progress(pool: Pool) -> dict[tuple[str, str], dict[str, int]]:
    """Live progress of deployments in flight: (model id, worker id) -> done/total bytes."""
    found: dict[tuple[str, str], dict[str, int]] = {}
    keys = [
        k
        for k in pool.redis.scan_iter(f"{DEPLOY_PROGRESS}*", count=1000)
        if not k.endswith(b":attempts")
    ]
    for key, raw in zip(keys, pool.redis.mget(keys) if keys else [], strict=True):
        if raw:
            model_id, worker_id = key.decode().removeprefix(DEPLOY_PROGRESS).split(":", 1)
            found[(model_id, worker_id)] = json.loads(raw)
    return found


def _notify(pool: Pool, model_id: str) -> None:
    head = int(pool.store.recorder.max_notification_id() or 0)
    pool.redis.publish(
        NOTICE_CHANNEL,
        json.dumps([{"view": DEPLOYMENTS_VIEW, "key": model_id, "position": head}]),
    )
