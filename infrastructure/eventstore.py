"""The pool's event store: one eventsourcing application on PostgreSQL, one notification log.

Configured from the bootstrap config only: `construct_env` is overridden so that the library
never reads the process environment.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError, JSONTranscoder, StoredEvent, Transcoding
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresApplicationRecorder
from eventsourcing.utils import Environment, EnvType

from domain.aggregate import PoolAggregate
from domain.errors import ConcurrencyConflict, NotFound
from domain.personal import Sealed
from domain.settings import ClusterSettings, PoolSettings
from infrastructure.database import connection_params

A = TypeVar("A", bound=PoolAggregate)

EVENT_STORE_NAME = "archipel"


class PoolEventRecorder(PostgresApplicationRecorder):
    """The library's recorder without psycopg's pipeline mode for inserts, and with the topics
    of the inserted events in the NOTIFY payload.

    psycopg 3.3's `Pipeline.sync()` can stop flushing before a large query is fully sent and
    then wait for an answer forever (seen with 1,000-event saves: one ~1 MB parameter), while
    holding the events table lock. The same statements, sent one by one, cost a few socket
    round trips and cannot deadlock. See bench/append.py for the reproduction.

    The topics let each projection runner skip a wake-up for events it does not read, instead
    of querying the log for nothing (a dozen views, most of them filtered).
    """

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if self.datastore.enable_db_functions:
            inserted: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
            return inserted
        with self.datastore.get_connection() as conn, conn.transaction():
            with conn.cursor() as curs:
                self._insert_events(curs, stored_events, **kwargs)
            if not stored_events:
                return None
            with conn.cursor() as curs:
                # As the library does (the table lock keeps notification ids committed in
                # order, so readers never skip one), minus its NOTIFY without a payload.
                self._lock_table(curs)
                PostgresAggregateRecorder._insert_stored_events(self, curs, stored_events, **kwargs)
                ids: Sequence[int] | None = self._fetch_ids_after_insert_events(
                    curs, stored_events, **kwargs
                )
                curs.execute(
                    "SELECT pg_notify(%s, %s)",
                    (self.channel_name, notify_payload(stored_events)),
                )
                return ids


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
