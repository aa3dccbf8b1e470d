"""Live-notice latency to many SSE clients, and admin commands/s through HTTP, on a real pool.

Starts `archipel serve` on a free port with a temp data dir (embedded PostgreSQL and Redis),
creates the first admin, then measures two figures, each next to a baseline measured in the
same run on the same machine:

- SSE notice latency: `--clients` connections stream `GET /api/stream` (httpx, asyncio, in this
  process); a flag is changed `--changes` times with `PUT /api/settings/{key}` (from a thread),
  and each client's time to receive the `change` event naming that key is measured from the
  commit. The commit time is when this process, LISTENing on the event store's PostgreSQL
  channel, receives the NOTIFY that the insert of the event sends: PostgreSQL delivers it as
  the transaction commits. A change starts at least 300 ms after the previous one, and only
  once every notice the previous one caused (settings, audit, then the admin notification that
  the automation records) has reached every client: each change is measured on an idle server.
  Baseline: the same fanout by bare Redis pub/sub (as many `redis.asyncio` subscribers on the
  pool's embedded Redis, publish -> receive). Target: p99 < 100 ms.
- Admin commands/s: `--commands` flag changes with the session cookie, Origin and CSRF header,
  from `--concurrency` threads with one keep-alive client each, no SSE client connected; a 409
  (another change of the settings aggregate came first) is retried, as the UI would after a
  reload. Baseline: `GET /healthz` with the same clients, the HTTP floor of this server.
  Target: >= 300 commands/s. Measured twice: on the pool above (`serve` runs every role in one
  process, as `make run` does), then on a second pool in the deployment layout of DESIGN.md:
  `serve --roles web` plus an `archipel worker` process for projections, background workers
  and the scheduler (one process is held to one core by Python's GIL; this uses both).

CPU use of the server, its embedded PostgreSQL and Redis and of the bench is printed for each
phase. Figures are printed, never asserted; the exit code is 0 unless something fails.

    .venv/bin/python bench/sse.py [--clients 500] [--changes 20] [--commands 2000]
                                  [--concurrency 8] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg
import redis
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.serve import ServeProcess, raise_fd_limit, running  # noqa: E402
from infrastructure.bootstrap import NOTICE_CHANNEL  # noqa: E402
from infrastructure.eventstore import EVENT_STORE_NAME  # noqa: E402

TARGET_P99_MS = 100.0
TARGET_COMMANDS_PER_S = 300.0
FLAG = "api.rate_limit_per_minute"  # an int flag in 1..100000
PASSWORD = "vivid-otter-maps-42"
# The eventsourcing recorder NOTIFYs this channel in every transaction that inserts events.
COMMIT_CHANNEL = f"{EVENT_STORE_NAME}_events"
SPACING_S = 0.3  # between two flag changes
WARMUP_CHANGES = 2  # not counted
DELIVERY_TIMEOUT_S = 5.0  # after it, a client that has not got a notice has missed it
CONNECT_BATCH = 50  # SSE connections opened at once
FOLLOWED_VIEWS = ("settings", "audit", "notifications")
FOLLOW_UP_S = 2.0  # how long to wait for the admin notification that follows a change
SETTLE_S = 0.05  # idle time after the previous change's notices were all delivered
BUSY_MACHINE_PCT = 10.0  # CPU of unrelated processes that flags a phase as disturbed


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=500, help="connected SSE clients")
    parser.add_argument("--changes", type=int, default=20, help="timed flag changes")
    parser.add_argument("--commands", type=int, default=2000, help="timed PUTs through HTTP")
    parser.add_argument("--concurrency", type=int, default=8, help="threads sending commands")
    parser.add_argument(
        "--rounds", type=int, default=3, help="timed command rounds per layout (median shown)"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if min(args.clients, args.changes, args.commands, args.concurrency, args.rounds) < 1:
        parser.error("--clients, --changes, --commands, --concurrency and --rounds must be >= 1")
    return args


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p90/p99/max in milliseconds (nearest-rank)."""
    if not samples:
        return {"p50_ms": float("nan"), "p90_ms": float("nan"), "p99_ms": float("nan"), "max_ms": 0}
    ordered = sorted(samples)

    def rank(p: float) -> float:
        return ordered[max(0, min(len(ordered) - 1, round(p * len(ordered)) - 1))] * 1000

    return {
        "p50_ms": rank(0.50),
        "p90_ms": rank(0.90),
        "p99_ms": rank(0.99),
        "max_ms": ordered[-1] * 1000,
        "mean_ms": statistics.fmean(ordered) * 1000,
    }


# --- the pool ---------------------------------------------------------------------------------


@contextmanager
def running_pool(layout: str = "one") -> Iterator[ServeProcess]:
    # A short temp path: Unix socket paths have a length limit.
    base = Path(tempfile.mkdtemp(prefix="arch-sse-", dir="/tmp"))
    with running(base, remove=True, layout=layout) as pool:
        yield pool


@dataclass(frozen=True)
class Session:
    base_url: str
    cookie: str
    csrf_token: str

    def cookies(self) -> dict[str, str]:
        return {"archipel_session": self.cookie}

    def headers(self) -> dict[str, str]:
        return {"Origin": self.base_url, "X-CSRF-Token": self.csrf_token}

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url, cookies=self.cookies(), headers=self.headers(), **kwargs
        )


def onboard(base_url: str) -> Session:
    with httpx.Client(base_url=base_url, headers={"Origin": base_url}, timeout=30) as http:
        token = http.get("/api/auth/csrf").json()["csrf_token"]
        created = http.post(
            "/api/onboarding/admin",
            json={"email": "bench@example.org", "display_name": "Bench", "password": PASSWORD},
            headers={"X-CSRF-Token": token},
        )
        if created.status_code != 201:
            raise RuntimeError(f"onboarding failed: {created.status_code} {created.text}")
        cookie = http.cookies.get("archipel_session")
        if not cookie:
            raise RuntimeError("onboarding set no archipel_session cookie")
        return Session(base_url, cookie, created.json()["session"]["csrf_token"])


class Values:
    """Flag values that differ from the previous one, so every PUT records an event."""

    def __init__(self) -> None:
        self._next = itertools.count(1)
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            return 1 + (next(self._next) % 100_000)


# --- commit times ---------------------------------------------------------------------------


class CommitListener:
    """Receive times of the event store's NOTIFYs, i.e. of its commits, on the bench clock."""

    def __init__(self, database_url: str) -> None:
        self._conn = psycopg.connect(database_url, autocommit=True)
        self._conn.execute(f'LISTEN "{COMMIT_CHANNEL}"')
        self.times: list[float] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="commit-listener", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            for _ in self._conn.notifies(timeout=0.2):
                now = time.perf_counter()
                with self._lock:
                    self.times.append(now)

    def between(self, start: float, end: float) -> list[float]:
        with self._lock:
            return [t for t in self.times if start <= t <= end]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._conn.close()


class NoticeTap:
    """When each change notice is published to the Redis channel the web process relays."""

    def __init__(self, redis_socket: Path) -> None:
        self._client = redis.Redis(unix_socket_path=str(redis_socket), socket_timeout=10)
        self._pubsub = self._client.pubsub()
        self._pubsub.subscribe(NOTICE_CHANNEL)
        self.published: dict[tuple[str, int], float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="notice-tap", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self._pubsub.get_message(ignore_subscribe_messages=True, timeout=0.2)
            if message is None or message.get("type") != "message":
                continue
            now = time.perf_counter()
            for notice in json.loads(message["data"]):
                self.published.setdefault((notice["view"], int(notice["position"])), now)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._pubsub.close()
        self._client.close()


class CpuMeter:
    """CPU time used meanwhile by the server, its embedded servers, this bench and the other
    user processes of the machine (not kernel threads), as % of one core."""

    def __init__(self, pool: ServeProcess) -> None:
        self._pool = pool
        self._start = time.perf_counter()
        self._before = self._all()

    def _ours(self) -> dict[int, str]:
        """The pid of each process of this measurement, with its part."""
        ours = {os.getpid(): "bench"}
        if self._pool.process is not None:
            ours[self._pool.process.pid] = "server"
        if self._pool.worker is not None:
            ours[self._pool.worker.pid] = "worker"
        marker = str(self._pool.data_dir)
        for process in psutil.process_iter(["cmdline"]):
            cmdline = " ".join(process.info["cmdline"] or [])
            if marker not in cmdline:
                continue
            if "redis" in cmdline:
                ours[process.pid] = "redis"
            elif "postgres" in cmdline:  # the postmaster; its backends are its children
                with contextlib.suppress(psutil.Error):
                    for backend in [process, *process.children(recursive=True)]:
                        ours[backend.pid] = "postgres"
        return ours

    @staticmethod
    def _all() -> dict[int, float]:
        """CPU seconds so far of every user process (kernel threads have no command line)."""
        used = {}
        for process in psutil.process_iter(["cpu_times", "cmdline"]):
            times = process.info["cpu_times"]
            if times is not None and process.info["cmdline"]:
                used[process.pid] = float(times.user + times.system)
        return used

    def stop(self) -> dict[str, float]:
        after = self._all()
        wall = time.perf_counter() - self._start
        ours = self._ours()
        parts = ("server", "worker") if self._pool.worker is not None else ("server",)
        used = dict.fromkeys((*parts, "postgres", "redis", "bench", "other"), 0.0)
        for pid, seconds in after.items():  # a process started meanwhile counts in full
            used[ours.get(pid, "other")] += max(0.0, seconds - self._before.get(pid, 0.0))
        return {f"{name}_pct": 100 * seconds / wall for name, seconds in used.items()}


# --- SSE latency ------------------------------------------------------------------------------


@dataclass
class Fanout:
    """Arrival times of notices, by notice position then client."""

    clients: int
    arrivals: dict[tuple[str, int], dict[int, float]] = field(default_factory=dict)
    ready: int = 0
    all_ready: asyncio.Event = field(default_factory=asyncio.Event)
    failed: list[str] = field(default_factory=list)
    pings: list[float] = field(default_factory=list)

    def pings_between(self, start: float, end: float) -> int:
        return sum(start <= t <= end for t in self.pings)

    def arrived(self, view: str, position: int, client: int, at: float) -> None:
        self.arrivals.setdefault((view, position), {}).setdefault(client, at)

    def received(self, view: str, position: int) -> dict[int, float]:
        return self.arrivals.get((view, position), {})

    def became_ready(self) -> None:
        self.ready += 1
        if self.ready >= self.clients:
            self.all_ready.set()

    async def wait_new_position(self, view: str, after: int, timeout: float) -> int | None:
        """The first position after `after` of a notice of `view` that some client got."""
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            newer = [p for v, p in self.arrivals if v == view and p > after]
            if newer:
                return min(newer)
            await asyncio.sleep(0.002)
        return None

    async def wait_all(self, view: str, position: int, deadline: float) -> None:
        while len(self.received(view, position)) < self.clients:
            if time.perf_counter() >= deadline or self.failed:
                return
            await asyncio.sleep(0.005)


async def sse_client(http: httpx.AsyncClient, index: int, fanout: Fanout) -> None:
    """One browser tab: reads events; notes when a settings notice for FLAG arrives."""
    try:
        async with http.stream("GET", "/api/stream") as response:
            if response.status_code != 200:
                fanout.failed.append(f"client {index}: HTTP {response.status_code}")
                return
            event, data = "message", ""
            async for line in response.aiter_lines():
                if line:
                    if line.startswith(":"):  # a comment: sse-starlette's heartbeat ping
                        fanout.pings.append(time.perf_counter())
                        continue
                    name, _, value = line.partition(":")
                    value = value[1:] if value.startswith(" ") else value
                    if name == "event":
                        event = value
                    elif name == "data":
                        data = value
                    continue
                at = time.perf_counter()  # the event is complete: a browser dispatches it now
                if event == "ready":
                    fanout.became_ready()
                elif event == "change":
                    for notice in json.loads(data):
                        view = notice.get("view")
                        if view in FOLLOWED_VIEWS and (view != "settings" or notice["key"] == FLAG):
                            fanout.arrived(view, int(notice["position"]), index, at)
                elif event in ("resync", "session_ended"):
                    fanout.failed.append(f"client {index}: unexpected {event} event")
                event, data = "message", ""
    except asyncio.CancelledError:
        raise
    except Exception as error:
        fanout.failed.append(f"client {index}: {type(error).__name__}: {error}")


def put_flag(http: httpx.Client, value: int, reason: str) -> httpx.Response:
    return http.put(f"/api/settings/{FLAG}", json={"value": value, "reason": reason})


async def sse_latency(
    pool: ServeProcess, session: Session, args: argparse.Namespace, values: Values
) -> dict[str, Any]:
    fanout = Fanout(args.clients)
    limits = httpx.Limits(max_connections=args.clients + 10, max_keepalive_connections=0)
    timeout = httpx.Timeout(30, read=None)  # the server pings every 15 s; no read deadline
    listener = CommitListener(pool.database_url)
    tap = NoticeTap(pool.redis_socket)
    put_http = session.client(timeout=30)
    tasks: list[asyncio.Task[None]] = []
    samples: dict[str, list[float]] = {
        "commit": [],
        "response": [],
        "sent": [],
        "audit": [],
        "published": [],
    }
    negatives = {"commit": 0, "response": 0}
    missed = {"settings": 0, "audit": 0}
    follow_ups = 0
    ambiguous = 0  # changes for which something else committed events too
    head = 0  # the position of the last event seen
    late_notify = 0  # changes whose NOTIFY this process got after one of their notices
    rounds: list[dict[str, Any]] = []
    try:
        async with httpx.AsyncClient(
            base_url=session.base_url, cookies=session.cookies(), limits=limits, timeout=timeout
        ) as http:
            connect_start = time.perf_counter()
            for first in range(0, args.clients, CONNECT_BATCH):
                batch = range(first, min(first + CONNECT_BATCH, args.clients))
                tasks += [asyncio.create_task(sse_client(http, i, fanout)) for i in batch]
                while fanout.ready < batch[-1] + 1 and not fanout.failed:
                    await asyncio.sleep(0.01)
                if fanout.failed:
                    raise RuntimeError(f"SSE clients failed: {fanout.failed[:3]}")
            await asyncio.wait_for(fanout.all_ready.wait(), timeout=60)
            connect_seconds = time.perf_counter() - connect_start
            await asyncio.sleep(1.0)  # let the server settle after the connection burst

            cpu: CpuMeter | None = None
            timed_start = 0.0
            for round_index in range(WARMUP_CHANGES + args.changes):
                if round_index == WARMUP_CHANGES:
                    cpu = CpuMeter(pool)
                    timed_start = time.perf_counter()
                started = time.perf_counter()
                value = values()

                def change(value: int = value) -> tuple[float, float, httpx.Response]:
                    sent = time.perf_counter()
                    response = put_flag(put_http, value, "bench: SSE latency")
                    return sent, time.perf_counter(), response

                sent, answered, response = await asyncio.to_thread(change)
                if response.status_code != 200:
                    raise RuntimeError(f"PUT failed: {response.status_code} {response.text}")
                position = await fanout.wait_new_position("settings", head, DELIVERY_TIMEOUT_S)
                if position is None:
                    raise RuntimeError("no client received the change notice within 5 s")
                # Events are recorded one at a time here: when this change's event directly
                # follows the last one seen, nothing else committed before it, and the first
                # NOTIFY after the PUT was sent is its commit.
                unseen_before = position != head + 1
                commits = listener.between(sent, answered + 1.0)
                if not commits:
                    raise RuntimeError("no NOTIFY received for the commit of a flag change")
                notified = commits[0]
                deadline = notified + DELIVERY_TIMEOUT_S
                await fanout.wait_all("settings", position, deadline)
                # The same commit also sends everyone an audit notice, and a moment later the
                # notification automation records an admin notification (audit + notifications
                # notices): wait for all of them, so that each change starts on an idle server.
                await fanout.wait_all("audit", position, deadline)
                follow_up = await fanout.wait_new_position("notifications", position, FOLLOW_UP_S)
                head = position if follow_up is None else follow_up
                if follow_up is not None:
                    follow_ups += round_index >= WARMUP_CHANGES
                    await fanout.wait_all("notifications", follow_up, deadline + FOLLOW_UP_S)
                    await fanout.wait_all("audit", follow_up, deadline + FOLLOW_UP_S)
                if fanout.failed:
                    raise RuntimeError(f"SSE clients failed: {fanout.failed[:3]}")
                received = fanout.received("settings", position)
                audit = fanout.received("audit", position)
                # Nothing of this change can be published before its commit: when this process
                # got the NOTIFY later than some notice (its threads were not scheduled at once),
                # the earliest notice is the better bound.
                bounds = [notified, *received.values(), *audit.values()]
                bounds += [
                    t
                    for t in (
                        tap.published.get(("settings", position)),
                        tap.published.get(("audit", position)),
                    )
                    if t is not None
                ]
                committed = min(bounds)
                if round_index >= WARMUP_CHANGES:
                    late_notify += committed < notified
                    ambiguous += unseen_before
                    missed["settings"] += args.clients - len(received)
                    missed["audit"] += args.clients - len(audit)
                    for at in received.values():
                        for name, origin in (("commit", committed), ("response", answered)):
                            latency = at - origin
                            if latency < 0:
                                negatives[name] += 1
                            samples[name].append(max(0.0, latency))
                        samples["sent"].append(at - sent)
                    samples["audit"] += [at - committed for at in audit.values()]
                    published = tap.published.get(("settings", position), committed)
                    samples["published"] += [at - published for at in received.values()]
                    rounds.append(
                        {
                            "position": position,
                            "published_ms": (published - committed) * 1000,
                            "audit_published_first": tap.published.get(("audit", position), 1e18)
                            < published,
                            "put_ms": (answered - sent) * 1000,
                            "commit_after_send_ms": (committed - sent) * 1000,
                            "first_ms": (min(received.values()) - committed) * 1000,
                            "last_ms": (max(received.values()) - committed) * 1000,
                            "received": len(received),
                            "pings_meanwhile": fanout.pings_between(
                                committed, max(received.values())
                            ),
                        }
                    )
                await asyncio.sleep(max(SETTLE_S, SPACING_S - (time.perf_counter() - started)))
            timed_seconds = time.perf_counter() - timed_start
            usage = cpu.stop() if cpu is not None else {}
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        put_http.close()
        listener.close()
        tap.close()

    def spread(key: str) -> dict[str, float]:
        return percentiles([r[key] / 1000 for r in rounds])

    return {
        "clients": args.clients,
        "changes": args.changes,
        "connect_seconds": connect_seconds,
        "mean_spacing_ms": timed_seconds / args.changes * 1000,
        "samples": len(samples["commit"]),
        "missed": missed["settings"],
        "from_commit": percentiles(samples["commit"]),
        "from_put_response": {
            **percentiles(samples["response"]),
            "negative_clamped": negatives["response"],
        },
        "from_put_sent": percentiles(samples["sent"]),
        "negative_from_commit_clamped": negatives["commit"],
        "audit_notice_from_commit": {**percentiles(samples["audit"]), "missed": missed["audit"]},
        "follow_up_notifications": follow_ups,
        "unseen_events_before_change": ambiguous,
        "notify_later_than_a_notice": late_notify,
        "commit_to_redis_publish": spread("published_ms"),
        "audit_published_first": sum(r["audit_published_first"] for r in rounds),
        "redis_publish_to_client": percentiles(samples["published"]),
        "put_ms": spread("put_ms"),
        "first_client_ms": spread("first_ms"),
        "last_client_ms": spread("last_ms"),
        "commit_after_send_ms": spread("commit_after_send_ms"),
        "cpu": usage,
        "rounds": rounds,
    }


async def redis_subscriber(
    connection: aioredis.Redis, channel: str, index: int, fanout: Fanout
) -> None:
    try:
        pubsub = connection.pubsub()
        await pubsub.subscribe(channel)
        fanout.became_ready()
        async for message in pubsub.listen():
            if message.get("type") != "message":
                continue
            at = time.perf_counter()
            for notice in json.loads(message["data"]):  # the same decoding work as an SSE client
                if notice.get("view") == "settings" and notice.get("key") == FLAG:
                    fanout.arrived("settings", int(notice["position"]), index, at)
    except asyncio.CancelledError:
        raise
    except Exception as error:
        fanout.failed.append(f"subscriber {index}: {type(error).__name__}: {error}")


async def redis_fanout(pool: ServeProcess, args: argparse.Namespace) -> dict[str, Any]:
    """The same fanout by bare Redis pub/sub: publish -> receive, same clients and changes."""
    fanout = Fanout(args.clients)
    channel = f"bench:fanout:{uuid.uuid4().hex}"
    publisher = redis.Redis(unix_socket_path=str(pool.redis_socket), socket_timeout=10)
    connections = [
        aioredis.Redis(unix_socket_path=str(pool.redis_socket)) for _ in range(args.clients)
    ]
    tasks: list[asyncio.Task[None]] = []
    samples: list[float] = []
    missed = 0
    try:
        for first in range(0, args.clients, CONNECT_BATCH):
            batch = range(first, min(first + CONNECT_BATCH, args.clients))
            tasks += [
                asyncio.create_task(redis_subscriber(connections[i], channel, i, fanout))
                for i in batch
            ]
            while fanout.ready < batch[-1] + 1 and not fanout.failed:
                await asyncio.sleep(0.01)
            if fanout.failed:
                raise RuntimeError(f"Redis subscribers failed: {fanout.failed[:3]}")
        await asyncio.wait_for(fanout.all_ready.wait(), timeout=60)
        await asyncio.sleep(0.2)  # SUBSCRIBEs sent, maybe not yet acknowledged; PUBLISH counts
        cpu: CpuMeter | None = None
        for round_index in range(WARMUP_CHANGES + args.changes):
            if round_index == WARMUP_CHANGES:
                cpu = CpuMeter(pool)
            started = time.perf_counter()
            position = round_index + 1
            payload = json.dumps(
                [{"view": "settings", "key": FLAG, "position": position}]
            )  # the shape and size of a real notice

            def publish(payload: str = payload) -> tuple[float, int]:
                published = time.perf_counter()
                return published, int(publisher.publish(channel, payload))

            published, receivers = await asyncio.to_thread(publish)
            if receivers != args.clients:
                raise RuntimeError(f"{receivers} Redis subscribers, expected {args.clients}")
            await fanout.wait_all("settings", position, published + DELIVERY_TIMEOUT_S)
            received = fanout.received("settings", position)
            if round_index >= WARMUP_CHANGES:
                missed += args.clients - len(received)
                samples += [at - published for at in received.values()]
            await asyncio.sleep(max(SETTLE_S, SPACING_S - (time.perf_counter() - started)))
        usage = cpu.stop() if cpu is not None else {}
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for connection in connections:
            with contextlib.suppress(Exception):
                await connection.aclose()
        publisher.close()
    return {"samples": len(samples), "missed": missed, **percentiles(samples), "cpu": usage}


# --- commands/s -----------------------------------------------------------------------------


@dataclass
class Load:
    count: int
    seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    conflicts: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def per_s(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


def run_load(
    pool: ServeProcess,
    session: Session,
    count: int,
    concurrency: int,
    request: Callable[[httpx.Client], int],
) -> Load:
    """`count` requests from `concurrency` threads, each with its own keep-alive client.

    `request` returns the HTTP status; a 409 is retried (it is not counted as done)."""
    load = Load(count)
    todo = iter(range(count))
    lock = threading.Lock()
    start_line = threading.Barrier(concurrency + 1)

    def worker() -> None:
        with session.client(timeout=30) as http:
            http.get("/healthz")  # the connection is open before timing starts
            start_line.wait()
            while True:
                with lock:
                    if next(todo, None) is None or len(load.errors) > 10:
                        return
                while True:
                    begun = time.perf_counter()
                    status = request(http)
                    took = time.perf_counter() - begun
                    with lock:
                        if status == 409:
                            load.conflicts += 1
                            continue
                        if status != 200:
                            load.errors.append(f"HTTP {status}")
                        load.latencies.append(took)
                    break

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    start_line.wait()
    cpu = CpuMeter(pool)
    begun = time.perf_counter()
    for thread in threads:
        thread.join()
    load.seconds = time.perf_counter() - begun
    load.cpu = cpu.stop()
    if load.errors:
        raise RuntimeError(f"{len(load.errors)} failed requests, e.g. {load.errors[0]}")
    return load


def commands_per_s(
    pool: ServeProcess, session: Session, args: argparse.Namespace, values: Values
) -> dict[str, Any]:
    def put(http: httpx.Client) -> int:
        return put_flag(http, values(), "bench: commands/s").status_code

    def healthz(http: httpx.Client) -> int:
        return http.get("/healthz").status_code

    warmup = max(50, args.concurrency * 5)
    run_load(pool, session, warmup, args.concurrency, healthz)
    run_load(pool, session, warmup, args.concurrency, put)
    # This machine's speed drifts between runs: several rounds, the median one reported.
    rounds = sorted(
        (run_load(pool, session, args.commands, args.concurrency, put) for _ in range(args.rounds)),
        key=lambda load: load.per_s,
    )
    commands = rounds[len(rounds) // 2]
    floor = run_load(pool, session, args.commands, args.concurrency, healthz)
    return {
        "commands": args.commands,
        "concurrency": args.concurrency,
        "rounds_per_s": [load.per_s for load in rounds],
        "seconds": commands.seconds,
        "per_s": commands.per_s,
        "conflicts_retried": commands.conflicts,
        "attempts_per_s": (commands.count + commands.conflicts) / commands.seconds,
        "latency": percentiles(commands.latencies),
        "cpu": commands.cpu,
        "baseline_healthz_per_s": floor.per_s,
        "baseline_latency": percentiles(floor.latencies),
        "baseline_cpu": floor.cpu,
        "ratio_to_baseline": commands.per_s / floor.per_s,
        "target_per_s": TARGET_COMMANDS_PER_S,
        "target_met": commands.per_s >= TARGET_COMMANDS_PER_S,
    }


# --- report -----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    fds = raise_fd_limit(2 * args.clients + 200)
    values = Values()
    with running_pool() as pool:
        session = onboard(pool.url)
        sse = asyncio.run(sse_latency(pool, session, args, values))
        baseline = asyncio.run(redis_fanout(pool, args))
        commands = commands_per_s(pool, session, args, values)
    # The same commands on the deployment layout of DESIGN.md: a web process, a worker process.
    with running_pool("split") as pool:
        split = commands_per_s(pool, onboard(pool.url), args, Values())
    p99 = sse["from_commit"]["p99_ms"]
    return {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "fd_limit": fds},
        "sse": {
            **sse,
            "baseline_redis_pubsub": baseline,
            "ratio_p99_to_baseline": p99 / baseline["p99_ms"] if baseline["p99_ms"] else None,
            "target_p99_ms": TARGET_P99_MS,
            "target_met": p99 < TARGET_P99_MS and sse["missed"] == 0,
        },
        "commands": commands,
        "commands_split": split,
    }


def report(results: dict[str, Any]) -> str:
    s, c, m = results["sse"], results["commands"], results["machine"]
    x = results["commands_split"]
    b = s["baseline_redis_pubsub"]

    def verdict(ok: bool) -> str:
        return "MET" if ok else "MISSED"

    def line(label: str, p: dict[str, float], note: str = "") -> str:
        return (
            f"  {label:<26} p50 {p['p50_ms']:6.1f}  p90 {p['p90_ms']:6.1f}  "
            f"p99 {p['p99_ms']:6.1f}  max {p['max_ms']:6.1f} ms{note}"
        )

    def rounds(figures: dict[str, Any]) -> str:
        return " / ".join(f"{per_s:,.0f}" for per_s in figures["rounds_per_s"])

    def cpu(usage: dict[str, float]) -> str:
        if not usage:
            return "    CPU: n/a"
        text = "    CPU (% of one core): " + ", ".join(
            f"{name.removesuffix('_pct')} {pct:.0f}" for name, pct in usage.items()
        )
        if usage.get("other_pct", 0.0) > BUSY_MACHINE_PCT:
            text += "  <- other work on this machine: figures are pessimistic"
        return text

    ratio = s["ratio_p99_to_baseline"]
    audit = s["audit_notice_from_commit"]
    response = s["from_put_response"]
    return "\n".join(
        [
            f"Archipel SSE benchmark ({m['cpus']} CPUs, Python {m['python']}; one `archipel "
            "serve` with embedded PostgreSQL and Redis; loopback HTTP)",
            "",
            f"Change notice latency: {s['clients']} SSE clients x {s['changes']} flag changes "
            f"= {s['samples']} notices received, {s['missed']} missed",
            f"  (connected in {s['connect_seconds']:.1f} s; a change every "
            f"{s['mean_spacing_ms']:.0f} ms on average, each once all notices caused by the "
            "previous one were delivered:",
            "  settings + audit, then the admin notification the automation records: "
            f"{s['follow_up_notifications']} of {s['changes']} changes had one)",
            line(
                "commit -> client",
                s["from_commit"],
                f"  ({s['negative_from_commit_clamped']} < 0)",
            ),
            "    commit = when this process gets the NOTIFY that PostgreSQL delivers as the "
            "event's transaction",
            "    commits (LISTEN on the event store's channel); under-estimates by that "
            "delivery, < 1 ms here.",
            *(
                [
                    f"    ({s['unseen_events_before_change']} changes came after an event "
                    "the bench did not see: their commit time may be early)"
                ]
                if s["unseen_events_before_change"]
                else []
            ),
            *(
                [
                    f"    ({s['notify_later_than_a_notice']} changes: the NOTIFY reached this "
                    "process after a notice did; the first notice was taken as commit time)"
                ]
                if s["notify_later_than_a_notice"]
                else []
            ),
            line("PUT response -> client", response, f"  ({response['negative_clamped']} < 0)"),
            *(
                [
                    "    negative values clamped to 0: most notices arrived before the PUT "
                    "answered (the server",
                    "    publishes before it answers), so this timing hides the latency; "
                    "for comparison only.",
                ]
                if response["negative_clamped"] * 2 > s["samples"]
                else [
                    "    under-estimates by the time from the commit to the response "
                    "(negative values clamped to 0).",
                ]
            ),
            line("PUT sent -> client", s["from_put_sent"], "  (upper bound)"),
            line("  commit -> Redis publish", s["commit_to_redis_publish"]),
            line("  Redis publish -> client", s["redis_publish_to_client"]),
            f"    (the audit notice of the same commit was published first for "
            f"{s['audit_published_first']} of {s['changes']} changes)",
            line("  first client per change", s["first_client_ms"]),
            line("  last client per change", s["last_client_ms"]),
            line("  PUT sent -> commit", s["commit_after_send_ms"]),
            line("  PUT round trip", s["put_ms"]),
            line("  audit notice (same commit)", audit, f"  ({audit['missed']} missed)"),
            cpu(s["cpu"]),
            line("Redis pub/sub baseline", b, f"  ({b['samples']} received, {b['missed']} missed)"),
            f"    publish -> receive by {s['clients']} redis.asyncio subscribers in this "
            "process, on the pool's Redis",
            cpu(b["cpu"]),
            f"  p99 {s['from_commit']['p99_ms']:.1f} ms = "
            + (f"{ratio:.1f} x the baseline p99" if ratio else "n/a")
            + f"; target p99 < {s['target_p99_ms']:.0f} ms: {verdict(s['target_met'])}",
            "",
            f"Admin commands through HTTP: PUT /api/settings/{FLAG} with session cookie, "
            f"Origin and CSRF header,",
            f"  {c['commands']} timed, from {c['concurrency']} threads (no SSE client connected), "
            f"{len(c['rounds_per_s'])} rounds:",
            f"  {c['per_s']:>8,.0f} commands/s   median round ({c['seconds']:.2f} s; "
            f"{c['conflicts_retried']} 409 conflicts retried, "
            f"{c['attempts_per_s']:,.0f} attempts/s); rounds {rounds(c)}",
            line("  command latency", c["latency"]),
            cpu(c["cpu"]),
            f"  {c['baseline_healthz_per_s']:>8,.0f} requests/s   GET /healthz, same clients "
            "and concurrency (HTTP floor)",
            line("  healthz latency", c["baseline_latency"]),
            cpu(c["baseline_cpu"]),
            f"  ratio {c['ratio_to_baseline']:.3f} of the floor; target >= "
            f"{c['target_per_s']:.0f} commands/s: {verdict(c['target_met'])}",
            "",
            "The same on a second pool in the deployment layout (DESIGN.md section 1): "
            "`archipel serve --roles web`",
            "  and an `archipel worker` process (projections, background workers, scheduler), "
            "same machine, same PostgreSQL:",
            f"  {x['per_s']:>8,.0f} commands/s   median round ({x['seconds']:.2f} s; "
            f"{x['conflicts_retried']} 409 conflicts retried); rounds {rounds(x)}",
            line("  command latency", x["latency"]),
            cpu(x["cpu"]),
            f"  {x['baseline_healthz_per_s']:>8,.0f} requests/s   GET /healthz (HTTP floor)",
            f"  ratio {x['ratio_to_baseline']:.3f} of the floor; target >= "
            f"{x['target_per_s']:.0f} commands/s: {verdict(x['target_met'])}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    results = run(args)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print(report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
