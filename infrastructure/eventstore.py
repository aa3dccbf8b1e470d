"""The pool's event store: one eventsourcing application on PostgreSQL, one notification log.

Configured from the bootstrap config only: `construct_env` is overridden so that the library
never reads the process environment.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.persistence import IntegrityError, JSONTranscoder, StoredEvent, Transcoding
from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.utils import Environment, EnvType
from psycopg.sql import SQL, Identifier, Literal

from domain.aggregate import PoolAggregate
from domain.errors import ConcurrencyConflict, NotFound
from domain.personal import Sealed
from domain.settings import ClusterSettings, PoolSettings
from infrastructure.database import connection_params

A = TypeVar("A", bound=PoolAggregate)

EVENT_STORE_NAME = "archipel"


class PoolEventRecorder(PostgresApplicationRecorder):
    """The library's recorder, inserting through one server-side function call: the events
    table lock, the insert and a NOTIFY whose payload names the topics, in one statement.

    The library locks the table (so notification ids commit in order and readers never skip
    one) and then sends the insert and the NOTIFY one round trip at a time, holding the lock
    meanwhile: every event write of the pool queues behind those round trips. Here the lock is
    taken inside the statement and released by its commit, with no client round trip while it
    is held (admin commands/s on 2 cores: see bench/sse.py). No psycopg pipeline mode either:
    psycopg 3.3's `Pipeline.sync()` can stop flushing a large query and wait forever (seen with
    1,000-event saves; bench/append.py reproduces it).

    The topics let each projection runner skip a wake-up for events it does not read.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        schema = Identifier(self.datastore.schema)
        function = Identifier("archipel_insert_events")
        self.sql_create_statements.append(
            SQL(
                "CREATE OR REPLACE FUNCTION {schema}.{function}"
                "(events {schema}.{event}[], notice text) "
                "RETURNS SETOF bigint LANGUAGE plpgsql AS $BODY$ "
                "BEGIN "
                "SET LOCAL lock_timeout = '{lock_timeout}s'; "
                "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; "
                "PERFORM pg_notify({channel}, notice); "
                "RETURN QUERY INSERT INTO {schema}.{table} AS t "
                "(originator_id, originator_version, topic, state) "
                "SELECT originator_id, originator_version, topic, state FROM unnest(events) "
                "RETURNING notification_id; "
                "END; $BODY$"
            ).format(
                schema=schema,
                function=function,
                event=Identifier(self.stored_event_type_name),
                lock_timeout=self.datastore.lock_timeout,
                table=Identifier(self.events_table_name),
                channel=Literal(self.channel_name),
            )
        )
        self._insert_call = SQL("SELECT id FROM {schema}.{function}(%s, %s) AS id").format(
            schema=schema, function=function
        )

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if not stored_events:
            return None
        rows = [
            self.construct_pg_stored_event(e.originator_id, e.originator_version, e.topic, e.state)
            for e in stored_events
        ]
        # Autocommit: the statement is its own transaction, committed before the answer.
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._insert_call, (rows, notify_payload(stored_events)), prepare=True)
            return [int(row["id"]) for row in curs.fetchall()]


NOTIFY_LIMIT = 7000  # PostgreSQL refuses payloads of 8000 bytes or more


def notify_payload(stored_events: Sequence[StoredEvent]) -> str:
    """The distinct topics, one per line; "*" (any topic) when they would not fit."""
    payload = "\n".join(sorted({event.topic for event in stored_events}))
    return payload if len(payload) < NOTIFY_LIMIT else "*"


class SealedAsDict(Transcoding):
    type = Sealed
    name = "sealed"

    def encode(self, obj: Sealed) -> dict[str, str]:
        return {"subject": obj.subject, "box": obj.box}

    def decode(self, data: dict[str, str]) -> Sealed:
        return Sealed(subject=data["subject"], box=data["box"])


class PoolEventStore(Application[UUID]):
    name = EVENT_STORE_NAME
    # Every change of a flag loads its whole flag set, so the replay after the latest snapshot
    # must stay short. Taking a snapshot replays at most one interval: amortised, about one
    # event per change whatever the interval, while a load costs half an interval on average.
    snapshotting_intervals = {PoolSettings: 50, ClusterSettings: 50}

    def __init__(self, env: EnvType, pool_id: str) -> None:
        self._pool_id = pool_id
        super().__init__(env)

    @property
    def pool_id(self) -> str:
        return self._pool_id

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        # Unlike the base class, never merge the process environment: configuration is explicit.
        values = dict(type(self).env)
        if self.snapshotting_intervals:
            values["IS_SNAPSHOTTING_ENABLED"] = "y"
        values.update(env or {})
        return Environment(name, values)

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        transcoder.register(SealedAsDict())

    def _take_snapshots(self, processing_event: ProcessingEvent[UUID]) -> None:
        """At most one snapshot per aggregate and save, of the aggregate just saved (its state
        is what was recorded). The library replays the stream from the store for each event
        on an interval boundary: twenty replays for a 1,000-event save at an interval of 50."""
        if self.snapshots is None:
            return
        taken = []
        for aggregate in processing_event.aggregates.values():
            interval = self.snapshotting_intervals.get(type(aggregate))
            if interval is None:
                continue
            versions = [
                e.originator_version
                for e in processing_event.events
                if e.originator_id == aggregate.id
            ]
            if versions and min(versions) - 1 < max(versions) // interval * interval:
                snapshot_class = getattr(type(aggregate), "Snapshot", type(self).snapshot_class)
                assert snapshot_class is not None, "the library's default snapshot class is set"
                taken.append(snapshot_class.take(aggregate))
        if taken:
            self.snapshots.put(taken)

    def load(self, aggregate_id: UUID, kind: type[A]) -> A:
        try:
            aggregate: object = self.repository.get(aggregate_id)
        except AggregateNotFoundError:
            raise NotFound(f"{kind.__name__} {aggregate_id} does not exist") from None
        if not isinstance(aggregate, kind):
            raise NotFound(f"{aggregate_id} is not a {kind.__name__}")
        return aggregate

    def store(self, *aggregates: PoolAggregate) -> int | None:
        try:
            recordings = self.save(*aggregates)
        except IntegrityError:
            raise ConcurrencyConflict(
                "someone else changed this first; reload and try again"
            ) from None
        return recordings[-1].notification.id if recordings else None


def postgres_env(database_url: str, *, pool_size: int = 5) -> dict[str, str]:
    params = connection_params(database_url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(params.get("dbname", "")),
        "POSTGRES_HOST": str(params.get("host", "localhost")),
        "POSTGRES_PORT": str(params.get("port", "5432")),
        "POSTGRES_USER": str(params.get("user", "postgres")),
        "POSTGRES_PASSWORD": str(params.get("password", "")),
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": "10",
        # No ping before each checkout (a round trip per query): the library retries reads on
        # connection errors, and a broken connection is replaced by the pool.
        "POSTGRES_PRE_PING": "n",
        "CREATE_TABLE": "y",
        "APPLICATION_RECORDER_TOPIC": "infrastructure.eventstore:PoolEventRecorder",
        # The cache fast-forwards from the store, so several writer processes stay correct.
        "AGGREGATE_CACHE_MAXSIZE": "1000",
        "AGGREGATE_CACHE_FASTFORWARD": "y",
    }


def memory_env() -> dict[str, Any]:
    """For unit tests: the same application, kept in memory."""
    return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
