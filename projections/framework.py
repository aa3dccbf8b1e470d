"""A small tracking-projection framework: view rows and position commit in one transaction.

Each read model reads the pool's notification log after its stored position, writes its rows
and moves its position in the same PostgreSQL transaction, so a crash never loses or doubles
an event. The position row is locked while a batch is applied, so a CLI catch-up and a running
`serve` can never apply the same event twice. After commit, a change notice per touched key
goes out on Redis for live UIs (Redis is only the wake-up; positions live in PostgreSQL).
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, ClassVar, Protocol
from uuid import UUID

import psycopg
from eventsourcing.persistence import Notification
from psycopg import sql

from domain.personal import Sealed

log = logging.getLogger(__name__)
IDLE_STEP_SECONDS = 1.0
# Under a stream of events a view waits this long after a step that applied some before it
# steps again, so one step applies all that arrived meanwhile instead of one transaction (and a
# handful of queries) per event: 120 -> 200 admin commands/s on 2 cores. An event after a quiet
# spell is applied at once, and a backlog is read batch after batch without waiting.
MIN_STEP_GAP_SECONDS = 0.05

POSITIONS_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS projection_positions (
        name text PRIMARY KEY,
        position bigint NOT NULL DEFAULT 0,
        updated_at timestamptz NOT NULL DEFAULT now())""",
    # Change notices are kept for a while so a live client that reconnects gets what it
    # missed; older than that, it is told to resync.
    """CREATE TABLE IF NOT EXISTS change_notices (
        position bigint NOT NULL,
        view text NOT NULL,
        key text NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now())""",
    "CREATE INDEX IF NOT EXISTS change_notices_position ON change_notices (position)",
)


# The Redis channel live-UI change notices travel on (web processes relay it over SSE).
NOTICE_CHANNEL = "archipel:changes"


@dataclass(frozen=True)
class ChangeNotice:
    """What a live UI needs to refetch: which view, which key, as of which position."""

    view: str
    key: str
    position: int


@dataclass(frozen=True)
class RecordedEvent:
    """A stored event as projections see it: JSON-shaped payload plus its metadata."""

    position: int
    topic: str
    aggregate_id: UUID
    aggregate_version: int
    meta: dict[str, Any]
    payload: dict[str, Any] = field(repr=False)

    @property
    def event_type(self) -> str:
        """`FlagChanged`, `Created`, ...: the class name of the event."""
        return self.topic.rsplit(".", 1)[-1]

    @property
    def aggregate_type(self) -> str:
        qualname = self.topic.split(":", 1)[-1]
        return qualname.rsplit(".", 1)[0]


def jsonable(value: Any) -> Any:
    """Turn decoded event state into plain JSON types (personal fields stay sealed)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, Sealed):
        return {"sealed_for": value.subject}
    if isinstance(value, str) and "\x00" in value:
        # PostgreSQL text cannot hold NUL: one such character must not stall a view forever.
        return value.replace("\x00", "\ufffd")
    return value


class EventSource(Protocol):
    """The notification log of the pool's event store."""

    def read(self, after: int, limit: int, topics: Sequence[str]) -> list[RecordedEvent]: ...

    def head(self) -> int: ...

    def head_statement(self) -> sql.Composable | None:
        """SQL for `head()`, to read it in the statement that locks a view's position."""

    def wait_for_new(self, timeout: float) -> frozenset[str] | None: ...


class NoticeSink(Protocol):
    def publish(self, notices: Sequence[ChangeNotice]) -> None: ...


class ReadModel(ABC):
    """One view. Subclasses declare their tables and how each event changes them."""

    name: ClassVar[str]
    topics: ClassVar[tuple[str, ...]] = ()  # event topics to read; empty means every event
    schema: ClassVar[tuple[str, ...]] = ()  # idempotent DDL
    tables: ClassVar[tuple[str, ...]] = ()  # emptied when the view is rebuilt

    @abstractmethod
    def apply(self, cur: psycopg.Cursor[Any], event: RecordedEvent) -> Iterable[ChangeNotice]:
        """Write what `event` changes, in the caller's transaction."""

    def after_commit(self, events: Sequence[RecordedEvent]) -> None:  # noqa: B027
        """Side effects that must wait until the batch is durable (default: none)."""


class ProjectionRunner:
    """Keeps one read model up to date with the event store."""

    def __init__(
        self,
        database: Any,
        source: EventSource,
        model: ReadModel,
        notices: NoticeSink | None = None,
        batch_size: int = 500,
    ) -> None:
        self.database = database
        self.source = source
        self.model = model
        self.notices = notices
        self.batch_size = batch_size
        self.caught_up = threading.Event()  # set once the log's end has been reached
        self.error: BaseException | None = None
        self._has_position_row = False
        self._topics = frozenset(model.topics)
        # One round trip locks the position, reads the log's head and skips the disk flush:
        # rows and position commit together, so a crash that loses this commit loses both,
        # and the events are applied again from the store.
        head = source.head_statement()
        self._head_in_lock = head is not None
        self._lock_position = sql.SQL(
            "SELECT position, {head} AS head, set_config('synchronous_commit', 'off', true) "
            "FROM projection_positions WHERE name = %s FOR UPDATE"
        ).format(head=sql.SQL("({})").format(head) if head is not None else sql.SQL("NULL"))

    @property
    def name(self) -> str:
        return self.model.name

    def position(self) -> int:
        with self.database.connection() as conn:
            row = conn.execute(
                "SELECT position FROM projection_positions WHERE name = %s", (self.name,)
            ).fetchone()
            return int(row["position"]) if row else 0

    def lag(self) -> int:
        """Events recorded but not yet in this view."""
        return max(0, self.source.head() - self.position())

    def step(self) -> int:
        """Apply the next batch; returns how many events it applied."""
        with self.database.connection() as conn:
            if not self._has_position_row:
                conn.execute(
                    "INSERT INTO projection_positions (name) VALUES (%s) ON CONFLICT DO NOTHING",
                    (self.name,),
                )
                conn.commit()
                self._has_position_row = True
            row = conn.execute(self._lock_position, (self.name,)).fetchone()
            position = int(row["position"])
            # The head is read first: every event up to it is committed and visible below.
            head_before = int(row["head"] or 0)
            if not self._head_in_lock and self.model.topics:
                head_before = self.source.head()
            events = self.source.read(position, self.batch_size, self.model.topics)
            new_position = events[-1].position if events else position
            if self.model.topics and len(events) < self.batch_size:
                # A filtered view also moves past the events it ignores.
                new_position = max(new_position, head_before)
            notices: list[ChangeNotice] = []
            with conn.cursor() as cur:
                for recorded in events:
                    notices.extend(self.model.apply(cur, recorded))
            if notices:
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO change_notices (position, view, key) VALUES (%s, %s, %s)",
                        [(n.position, n.view, n.key) for n in notices],
                    )
            if new_position != position:
                conn.execute(
                    "UPDATE projection_positions SET position = %s, updated_at = now() "
                    "WHERE name = %s",
                    (new_position, self.name),
                )
        if events:
            self.model.after_commit(events)
            if self.notices is not None and notices:
                self.notices.publish(notices)
        return len(events)

    def catch_up(self) -> int:
        """Apply everything recorded so far; returns the position reached."""
        while self.step() == self.batch_size:
            pass
        self.caught_up.set()
        return self.position()

    def rebuild(self) -> int:
        """Drop the view's rows and replay the whole log into it."""
        with self.database.connection() as conn:
            conn.execute(
                "INSERT INTO projection_positions (name) VALUES (%s) ON CONFLICT DO NOTHING",
                (self.name,),
            )
            conn.execute(
                "SELECT position FROM projection_positions WHERE name = %s FOR UPDATE",
                (self.name,),
            )
            for table in self.model.tables:
                conn.execute(f"TRUNCATE {table}")
            conn.execute("DELETE FROM change_notices WHERE view = %s", (self.name,))
            conn.execute(
                "UPDATE projection_positions SET position = 0, updated_at = now() WHERE name = %s",
                (self.name,),
            )
        return self.catch_up()

    def wants(self, topics: frozenset[str] | None) -> bool:
        """Might events of these topics change this view? (None: unknown topics.)"""
        return topics is None or not self._topics or not self._topics.isdisjoint(topics)

    def run(self, stop: threading.Event) -> None:
        """Follow the log until `stop` is set; retries after errors.

        A wake-up for events of other topics is skipped, but the view still steps at least
        once a second, so its position follows the log head (lag metrics, readiness)."""
        woken: frozenset[str] | None = None
        last_step = last_applied = 0.0
        backlog = False
        while not stop.is_set():
            try:
                now = time.monotonic()
                if self.wants(woken) or now - last_step >= IDLE_STEP_SECONDS:
                    gap = MIN_STEP_GAP_SECONDS - (now - last_applied)
                    if gap > 0 and not backlog:
                        stop.wait(gap)
                    last_step = time.monotonic()
                    applied = self.step()
                    if applied:
                        last_applied = last_step
                    backlog = applied == self.batch_size
                    if backlog:
                        woken = None  # more to read: no waiting
                        continue
                    self.caught_up.set()
                woken = self.source.wait_for_new(timeout=IDLE_STEP_SECONDS)
                self.error = None
            except Exception as error:  # keep the runner alive; readiness reports it
                self.error = error
                woken = None
                log.exception("projection %s failed; retrying", self.name)
                stop.wait(1.0)


class _Inbox:
    """What one view has been woken for since it last looked (topics, or None: anything)."""

    def __init__(self, wanted: frozenset[str], started: Callable[[], None]) -> None:
        self._wanted = wanted  # empty: every topic
        self._started = started  # the listener starts when a view first waits (not in a CLI)
        self._ready = threading.Condition()
        self._pending = False
        self._topics: set[str] | None = set()

    def put(self, topics: frozenset[str] | None) -> None:
        if topics is not None and self._wanted and self._wanted.isdisjoint(topics):
            return  # nothing this view reads: let it sleep
        with self._ready:
            if topics is None or self._topics is None:
                self._topics = None
            else:
                self._topics |= topics
            self._pending = True
            self._ready.notify()

    def take(self, timeout: float) -> frozenset[str] | None:
        """The topics woken for, or None (anything, or `timeout` passed with nothing new)."""
        self._started()
        with self._ready:
            if not self._pending:
                self._ready.wait(timeout)
            if not self._pending:
                return None
            topics = None if self._topics is None else frozenset(self._topics)
            self._pending, self._topics = False, set()
            return topics


class LogListener:
    """One LISTEN connection per process for the event store's notices, fanned out to every
    view's inbox: a connection per view made PostgreSQL and this process handle each notice
    once per view. Lost and reconnected, it wakes every view (a notice may have been missed)."""

    def __init__(self, listen_url: str, channel: str) -> None:
        self._url = listen_url
        self._channel = channel
        self._lock = threading.Lock()
        self._inboxes: list[_Inbox] = []
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def subscribe(self, topics: Sequence[str] = ()) -> _Inbox:
        """An inbox woken by notices naming any of `topics` (all notices when empty)."""
        inbox = _Inbox(frozenset(topics), self._start)
        with self._lock:
            self._inboxes.append(inbox)
        return inbox

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._listen, name="event-log-listener", daemon=True
                )
                self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _deliver(self, topics: frozenset[str] | None) -> None:
        with self._lock:
            inboxes = list(self._inboxes)
        for inbox in inboxes:
            inbox.put(topics)

    def _listen(self) -> None:
        connection: psycopg.Connection[Any] | None = None
        while not self._stop.is_set():
            try:
                if connection is None:
                    connection = psycopg.connect(self._url, autocommit=True)
                    connection.execute(f'LISTEN "{self._channel}"')
                    self._deliver(None)
                for notice in connection.notifies(timeout=IDLE_STEP_SECONDS):
                    payload = notice.payload
                    topics = None if not payload or payload == "*" else payload.split("\n")
                    self._deliver(None if topics is None else frozenset(topics))
            except psycopg.Error:
                if connection is not None:
                    connection.close()
                connection = None
                self._deliver(None)
                self._stop.wait(0.5)
        if connection is not None:
            connection.close()


class StoreEventSource:
    """The pool event store's notification log, with LISTEN/NOTIFY as the wake-up."""

    def __init__(
        self, store: Any, listener: LogListener | None = None, topics: Sequence[str] = ()
    ) -> None:
        """`topics`: the events the reader wants woken for (empty: all of them)."""
        self._store = store
        self._recorder = store.recorder
        self._inbox = listener.subscribe(topics) if listener is not None else None

    def read(self, after: int, limit: int, topics: Sequence[str]) -> list[RecordedEvent]:
        notifications = self._recorder.select_notifications(
            start=after + 1, limit=limit, topics=topics
        )
        return [self._decode(n) for n in notifications]

    def head(self) -> int:
        return int(self._recorder.max_notification_id() or 0)

    def head_statement(self) -> sql.Composable | None:
        statement = getattr(self._recorder, "max_notification_id_statement", None)
        return statement if isinstance(statement, sql.Composable) else None

    def _decode(self, notification: Notification) -> RecordedEvent:
        state = self._store.mapper.transcoder.decode(notification.state)
        meta = jsonable(state.pop("meta", {}) or {})
        for internal in ("timestamp", "originator_topic"):
            state.pop(internal, None)
        return RecordedEvent(
            position=notification.id,
            topic=notification.topic,
            aggregate_id=UUID(str(notification.originator_id)),
            aggregate_version=notification.originator_version,
            meta=dict(meta),
            payload=jsonable(state),
        )

    def wait_for_new(self, timeout: float) -> frozenset[str] | None:
        """Wait for new events; returns their topics when the notices named them."""
        if self._inbox is None:  # in-memory store: poll
            time.sleep(min(timeout, 0.2))
            return None
        return self._inbox.take(timeout)
