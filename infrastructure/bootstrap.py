"""The one wiring place: builds a pool's object graph from the bootstrap config.

`open_pool` starts (or reuses) the embedded servers when no URL is configured, prepares the
schema and returns a `Pool`; `PoolRuntime` runs the roles of a process (projections, workers,
scheduler) in threads beside the web server. Everything else receives what it needs from here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import redis

from application.admins import AdminService
from application.automations import NotificationAutomation
from application.balancer import BalancerAutomation
from application.catalog import CatalogService, DeploymentAutomation, satellite_of
from application.failsafe import FailsafeAutomation
from application.federation import FederationService
from application.incidents import IncidentService
from application.mail import MailService
from application.migrations import MigrationRunner, MigrationService
from application.onboarding import OnboardingService
from application.personal_data import PersonalDataService
from application.settings import SettingsService
from application.workers import HealthAutomation, WorkerService
from domain.automations import AUTOMATIONS, AutomationSpec
from infrastructure.automations import register_actors
from infrastructure.background import Background
from infrastructure.blobs import BlobStore
from infrastructure.catalog_sync import fetch_blob
from infrastructure.config import BootstrapConfig, mask_url
from infrastructure.crypto import (
    PERSON_KEYS_SCHEMA,
    KeyedDigests,
    MasterSecretBox,
    PostgresPersonalDataVault,
    load_or_create_master_key,
)
from infrastructure.database import CORE_SCHEMA, Database
from infrastructure.deployer import OllamaDeployer
from infrastructure.embedded import EmbeddedPostgres, EmbeddedRedis
from infrastructure.eventstore import PoolEventRecorder, PoolEventStore, postgres_env
from infrastructure.federation import PeerClient, PoolSigner
from infrastructure.identity import FileIdentityKeys
from infrastructure.mailer import SmtpMailSender
from infrastructure.ollama_health import HealthChecker, OllamaHttpProbe
from infrastructure.passwords import Argon2Passwords
from infrastructure.replication import HttpPeerTransport
from infrastructure.scheduler import PeriodicJob, Scheduler
from infrastructure.sessions import SESSIONS_SCHEMA, PostgresSessionStore, RedisLoginThrottle
from infrastructure.telemetry import RedisTelemetry
from projections.admins import AdminsView
from projections.audit import AuditView
from projections.catalog import CatalogView
from projections.erasure import ErasureView
from projections.federation import FederationLogView, PeersView
from projections.framework import (
    NOTICE_CHANNEL,
    POSITIONS_SCHEMA,
    ChangeNotice,
    LogListener,
    ProjectionRunner,
    ReadModel,
    StoreEventSource,
)
from projections.notifications import NotificationsView
from projections.operations import OperationsView
from projections.outbox import OutboxView
from projections.settings import SettingsView
from projections.workers import WorkersView

log = logging.getLogger(__name__)


class StartupError(Exception):
    """The pool cannot start; the message says what to fix."""


class RedisNotices:
    """Publishes projection change notices for web processes to relay to live UIs."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def publish(self, notices: Sequence[ChangeNotice]) -> None:
        payload = json.dumps([notice.__dict__ for notice in notices])
        try:
            self._client.publish(NOTICE_CHANNEL, payload)
        except redis.RedisError:
            log.warning("could not publish change notices; live views will resync")


@dataclass
class Pool:
    config: BootstrapConfig
    database: Database
    store: PoolEventStore
    settings: SettingsService
    personal_data: PersonalDataService
    notifier: NotificationAutomation
    admins: AdminService
    onboarding: OnboardingService
    sessions: PostgresSessionStore
    identity: FileIdentityKeys
    workers: WorkerService
    health: HealthAutomation
    telemetry: RedisTelemetry
    catalog: CatalogService
    deployments: DeploymentAutomation
    blobs: BlobStore
    deployer: OllamaDeployer
    signer: PoolSigner
    peer_client: PeerClient
    federation: FederationService
    incidents: IncidentService
    mail: MailService
    migrations: MigrationService
    migration_runner: MigrationRunner
    failsafe: FailsafeAutomation
    balancer: BalancerAutomation
    redis: redis.Redis
    redis_url: str
    background: Background
    master_key: bytes = field(repr=False)
    runners: dict[str, ProjectionRunner] = field(default_factory=dict)
    _stops: list[Callable[[], None]] = field(default_factory=list)
    _health_checker: HealthChecker | None = None

    @property
    def pool_id(self) -> str:
        return self.store.pool_id

    def public_url(self) -> str:
        """Where admins reach this pool (links in e-mail, the key document)."""
        return public_url(self.config, self.onboarding.profile())

    def runner(self, name: str) -> ProjectionRunner:
        return self.runners[name]

    def health_checker(self) -> HealthChecker:
        """Made on first use (only processes running health rounds need its thread)."""
        if self._health_checker is None:
            self._health_checker = HealthChecker()
            self._stops.append(self._health_checker.close)
        return self._health_checker

    def close(self) -> None:
        for stop in reversed(self._stops):
            try:
                stop()
            except Exception:
                log.exception("error while closing the pool")
        self._stops.clear()


def read_models(
    background: Background | None,
    own_pool: Callable[[], str] = str,
    woken: Callable[[], None] | None = None,
) -> list[ReadModel]:
    relay = background.relay if background is not None else None
    return [
        SettingsView(),
        AuditView(),
        NotificationsView(),
        AdminsView(),
        WorkersView(),
        CatalogView(),
        PeersView(),
        FederationLogView(own_pool=own_pool, woken=woken),
        ErasureView(),
        OperationsView(),
        OutboxView(relay),
    ]


def open_pool(config: BootstrapConfig) -> Pool:
    """Connect to (or start) PostgreSQL and Redis; build every service."""
    stops: list[Callable[[], None]] = []

    def undo() -> None:
        for stop in reversed(stops):
            try:
                stop()
            except Exception:
                log.exception("cleanup after failed start")

    try:
        return _open(config, stops)
    except StartupError:
        undo()
        raise
    except Exception as error:
        undo()
        raise StartupError(str(error)) from error


def _start_postgres(config: BootstrapConfig, stops: list[Callable[[], None]]) -> str:
    if config.database_url is not None:
        return config.database_url
    embedded = EmbeddedPostgres(config.data_dir)
    url = embedded.start()
    stops.append(embedded.stop)
    return url


def _start_redis(config: BootstrapConfig, stops: list[Callable[[], None]]) -> str:
    if config.redis_url is not None:
        return config.redis_url
    embedded = EmbeddedRedis(config.data_dir)
    url = embedded.start()
    stops.append(embedded.stop)
    return url


def _open(config: BootstrapConfig, stops: list[Callable[[], None]]) -> Pool:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    database_url = _start_postgres(config, stops)
    database = Database(database_url)
    database.open()
    stops.append(database.close)

    redis_url = _start_redis(config, stops)
    redis_client = redis.Redis.from_url(redis_url, socket_timeout=5)
    try:
        redis_client.ping()
    except redis.RedisError as error:
        raise StartupError(f"cannot reach Redis at {mask_url(redis_url)}: {error}") from error
    stops.append(redis_client.close)
    background = Background(redis_url, database)
    stops.append(background.close)

    pool_ids: list[str] = []  # known once the schema exists; the log view needs it later

    def wake_peers() -> None:
        with contextlib.suppress(Exception):
            background.enqueue("notify_peers", {})

    models = read_models(background, own_pool=lambda: pool_ids[0], woken=wake_peers)
    schema: list[str] = [
        *CORE_SCHEMA,
        *POSITIONS_SCHEMA,
        *PERSON_KEYS_SCHEMA,
        *SESSIONS_SCHEMA,
    ]
    for model in models:
        schema.extend(model.schema)
    with database.startup_lock():
        database.ensure_vector()
        database.apply_schema(schema)
        store = PoolEventStore(postgres_env(database_url), pool_id=database.pool_id())
    pool_ids.append(store.pool_id)
    stops.append(store.close)

    master_key = load_or_create_master_key(config.data_dir)
    personal_data = PersonalDataService(store, PostgresPersonalDataVault(database, master_key))
    # Flags are read on every request (session timeouts, ...): a second of staleness for
    # changes made by another process saves two queries per request.
    settings = SettingsService(store, cache_seconds=1.0)
    sessions = PostgresSessionStore(database, redis_client)
    admins = AdminService(
        store,
        personal_data,
        Argon2Passwords(),
        KeyedDigests(master_key),
        sessions,
        RedisLoginThrottle(redis_client),
        settings,
    )
    identity = FileIdentityKeys(config.data_dir, master_key)
    blobs = BlobStore(config.data_dir)
    signer = PoolSigner(identity, store.pool_id)
    peer_client = PeerClient(signer)
    onboarding_holder: list[OnboardingService] = []

    def own_key_document() -> dict[str, Any]:
        profile = onboarding_holder[0].profile()
        return signer.key_document(public_url(config, profile), str(profile.get("pool_name", "")))

    notices = RedisNotices(redis_client)
    listener = LogListener(database_url, cast(PoolEventRecorder, store.recorder).channel_name)
    stops.append(listener.close)
    runners = {
        model.name: ProjectionRunner(
            database, StoreEventSource(store, listener, model.topics), model, notices
        )
        for model in models
    }
    incidents = IncidentService(store)
    mail = MailService(store, MasterSecretBox(master_key), SmtpMailSender())
    migrations = MigrationService(
        store, incidents, mail, lambda: settings.str_value("cluster.failover_mode")
    )
    deployer = OllamaDeployer(blobs.path)
    workers = WorkerService(store, OllamaHttpProbe())
    pool = Pool(
        config=config,
        database=database,
        store=store,
        settings=settings,
        personal_data=personal_data,
        notifier=NotificationAutomation(store),
        admins=admins,
        onboarding=OnboardingService(store, admins, identity),
        sessions=sessions,
        identity=identity,
        workers=workers,
        health=HealthAutomation(store),
        telemetry=RedisTelemetry(redis_client),
        catalog=CatalogService(
            store,
            lambda: satellite_of(settings.str_value("cluster.catalog_master_pool"), store.pool_id),
        ),
        deployments=DeploymentAutomation(store),
        blobs=blobs,
        deployer=deployer,
        signer=signer,
        peer_client=peer_client,
        federation=FederationService(store, HttpPeerTransport(peer_client, own_key_document)),
        incidents=incidents,
        mail=mail,
        migrations=migrations,
        migration_runner=MigrationRunner(store, incidents, mail, deployer),
        failsafe=FailsafeAutomation(store, incidents, mail),
        balancer=BalancerAutomation(store, migrations, workers),
        redis=redis_client,
        redis_url=redis_url,
        background=background,
        master_key=master_key,
        runners=runners,
        _stops=stops,
    )
    onboarding_holder.append(pool.onboarding)
    deployer.fetch_missing = lambda digest, size, name, progress: fetch_blob(
        pool, digest, size, name, progress
    )
    register_actors(pool)
    return pool


NOTICE_RETENTION_SECONDS = 3600
ABANDONED_UPLOAD_SECONDS = 86400  # an upload not written to for a day is given up


def prune(pool: Pool) -> None:
    with pool.database.connection() as conn:
        conn.execute(
            "DELETE FROM change_notices WHERE recorded_at < now() - make_interval(secs => %s)",
            (NOTICE_RETENTION_SECONDS,),
        )
    hours = pool.settings.int_value("auth.session_absolute_timeout_hours")
    pool.sessions.expire_stale(hours * 3600)
    pool.blobs.expire_uploads(ABANDONED_UPLOAD_SECONDS)


class PoolRuntime:
    """Runs this process's roles (other than web) in background threads."""

    def __init__(self, pool: Pool, roles: Sequence[str], worker_threads: int = 2) -> None:
        self.pool = pool
        self.roles = tuple(roles)
        self.worker_threads = worker_threads
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.scheduler: Scheduler | None = None

    def start(self) -> None:
        if "projections" in self.roles:
            for runner in self.pool.runners.values():
                self._spawn(f"projection-{runner.name}", runner.run)
        if "workers" in self.roles:
            self.pool.background.start_worker(self.worker_threads)
        if "scheduler" in self.roles:
            self.scheduler = Scheduler(self.pool.database.url, self._periodic_jobs())
            self._spawn("scheduler", self.scheduler.run)

    def _periodic_jobs(self) -> list[PeriodicJob]:
        pool = self.pool
        # The automations' periodic runs: switch and interval from their flags; each run is
        # a message, so the scheduler thread only enqueues and never waits on the work.
        jobs = [
            PeriodicJob(
                spec.id,
                interval=_interval(pool, spec),
                enabled=_switch(pool, spec),
                run=_enqueuer(pool, spec.id),
            )
            for spec in AUTOMATIONS
            if spec.trigger == "periodic" and spec.available
        ]
        return [
            # Safety net of the outbox: messages whose send was cut short by a crash.
            PeriodicJob(
                "outbox-relay",
                interval=lambda: 5.0,
                enabled=lambda: True,
                run=lambda: pool.background.relay(older_than_seconds=10),
            ),
            *jobs,
            # Housekeeping: change notices older than live clients may resume from, and
            # sessions past any absolute timeout.
            PeriodicJob(
                "prune", interval=lambda: 60.0, enabled=lambda: True, run=lambda: prune(pool)
            ),
        ]

    def _spawn(self, name: str, target: Callable[[threading.Event], None]) -> None:
        thread = threading.Thread(target=target, args=(self._stop,), name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self.pool.background.stop_worker()
        for thread in self._threads:
            thread.join(timeout=10)
        self._threads.clear()

    def readiness(self) -> dict[str, str | None]:
        """Each part's problem, or None when it is fine."""
        problems: dict[str, str | None] = {"database": None, "redis": None, "projections": None}
        try:
            with self.pool.database.connection() as conn:
                conn.execute("SELECT 1")
        except Exception as error:
            problems["database"] = f"unreachable: {error}"
        try:
            self.pool.redis.ping()
        except Exception as error:
            problems["redis"] = f"unreachable: {error}"
        if problems["database"] is None:
            problems["projections"] = self._projection_problem()
        return problems

    def _projection_problem(self) -> str | None:
        behind = []
        for runner in self.pool.runners.values():
            if runner.error is not None:
                return f"{runner.name} failing: {runner.error}"
            if "projections" in self.roles:
                if not runner.caught_up.is_set():
                    behind.append(runner.name)
            elif runner.lag() > runner.batch_size:
                behind.append(runner.name)
        return f"catching up: {', '.join(behind)}" if behind else None


def _interval(pool: Pool, spec: AutomationSpec) -> Callable[[], float]:
    if spec.interval_flag is not None:
        key = spec.interval_flag
        return lambda: float(pool.settings.int_value(key))
    seconds = float(spec.interval_seconds or 60)
    return lambda: seconds


def _switch(pool: Pool, spec: AutomationSpec) -> Callable[[], bool]:
    if spec.switch_flag is None:
        return lambda: True
    key = spec.switch_flag
    return lambda: pool.settings.bool_value(key)


def _enqueuer(pool: Pool, automation: str) -> Callable[[], None]:
    return lambda: pool.background.enqueue("run_automation", {"id": automation})


def public_url(config: BootstrapConfig, profile: dict[str, Any]) -> str:
    """The bootstrap public URL, else the one set during onboarding, else the listen address."""
    return str(config.public_url or profile.get("public_url") or config.effective_public_url)
