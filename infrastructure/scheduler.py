"""One scheduler per pool, elected with a PostgreSQL advisory lock, enqueues periodic work.

Each process with the scheduler role competes for the lock on a dedicated connection; the
holder is the leader until its connection drops (process death releases the lock at once).
Intervals and on/off switches of periodic automations are runtime flags, read at every tick.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

log = logging.getLogger(__name__)

SCHEDULER_LOCK = 0x41524348  # "ARCH": the advisory lock key of the pool's scheduler


@dataclass
class PeriodicJob:
    name: str
    interval: Callable[[], float]  # seconds, read each tick (usually from a flag)
    enabled: Callable[[], bool]
    run: Callable[[], object]
    last_run: float = 0.0


class Scheduler:
    def __init__(self, database_url: str, jobs: list[PeriodicJob], tick: float = 1.0) -> None:
        self._url = database_url
        self.jobs = jobs
        self._tick = tick
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self.is_leader = False

    def _try_lead(self) -> bool:
        try:
            if self._conn is None or self._conn.closed:
                self._conn = psycopg.connect(self._url, autocommit=True)
                self.is_leader = False
            if not self.is_leader:
                row = self._conn.execute(
                    "SELECT pg_try_advisory_lock(%s)", (SCHEDULER_LOCK,)
                ).fetchone()
                self.is_leader = bool(row and row[0])
                if self.is_leader:
                    log.info("this process is now the pool's scheduler")
            else:
                self._conn.execute("SELECT 1")  # still connected, still holding the lock
        except psycopg.Error:
            self.is_leader = False
            self._conn = None
        return self.is_leader

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            if self._try_lead():
                now = time.monotonic()
                for job in self.jobs:
                    try:
                        if job.enabled() and now - job.last_run >= job.interval():
                            job.last_run = now
                            job.run()
                    except Exception:
                        log.exception("periodic job %s failed", job.name)
            stop.wait(self._tick)
        self.release()

    def release(self) -> None:
        if self._conn is not None and not self._conn.closed:
            # Unlock explicitly: the server releases a closed session's locks only once its
            # backend has exited, a moment later.
            with contextlib.suppress(psycopg.Error):
                self._conn.execute("SELECT pg_advisory_unlock_all()")
            self._conn.close()
        self._conn = None
        self.is_leader = False
