"""CPU cost of health-checking many Ollama workers, next to bare aiohttp in the same run.

Starts `archipel worker-sim` with `--workers` simulated workers as a separate process (its CPU
is not counted), then in this process:

- Archipel: one `HealthChecker` (the class the `check_workers` actor uses, on its own event
  loop thread) checks every worker each `--interval` seconds. A first, cold round (clients
  created, connections opened, slow fields fetched) is reported on its own; then `--rounds`
  rounds are measured. With the defaults the measured rounds are the checker's rounds 2 to 7:
  five ps-only rounds (GET /api/ps) and one slow-fields round (/api/ps, /api/tags and
  /api/version). After each round the results are recorded in Redis with `RedisTelemetry`, as
  the actor does (an embedded Redis in a temp dir); that CPU is measured apart.
- Baseline: the same number of GET /api/ps requests, all at once, with one shared aiohttp
  `ClientSession`, its JSON decoded, at the same interval (cold round, then `--rounds`).
- Reference, with `--httpx-shared`: the same with one shared `httpx.AsyncClient` (the library
  under the ollama client) whose pool keeps every connection alive, i.e. the checker's own
  stack with one connection pool for all workers instead of a client per worker. It is slow:
  httpcore scans the whole pool for each request, so a round of 1000 takes ~15 s of CPU.

The checker's round counter and httpx pools are read (never changed) to tell slow-fields
rounds apart and to count the connections each round opened.

The main figure is the CPU cores used on average over the measurement window (process CPU
time / wall time, the idle time between rounds included; target < 0.5 core), with CPU per
round and its ratio to the baseline. Not included: listing workers from PostgreSQL, status
transitions and the change notice the actor also does each round.

Figures are printed, never asserted; the exit code is 0 unless something fails.

    .venv/bin/python bench/health.py [--workers 1000] [--rounds 6] [--interval 5]
                                     [--timeout 2] [--no-telemetry] [--profile]
                                     [--httpx-shared] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import json
import logging
import os
import pstats
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import psutil
import redis

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from application.workers import CheckResult  # noqa: E402
from bench.serve import log_tail_on_failure, raise_fd_limit  # noqa: E402
from infrastructure.embedded import EmbeddedRedis  # noqa: E402
from infrastructure.ollama_health import SLOW_FIELDS_EVERY, HealthChecker  # noqa: E402
from infrastructure.telemetry import RedisTelemetry  # noqa: E402

ARCHIPEL = str(Path(sys.executable).parent / "archipel")
TARGET_CORES = 0.5
HOST = "127.0.0.1"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=1000, help="simulated workers")
    parser.add_argument("--rounds", type=int, default=6, help="measured rounds per phase")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between rounds")
    parser.add_argument("--timeout", type=float, default=2.0, help="HealthChecker timeout (s)")
    parser.add_argument(
        "--no-telemetry", action="store_true", help="do not record the results in Redis"
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile one more checker round and print it"
    )
    parser.add_argument(
        "--httpx-shared",
        action="store_true",
        help="also measure one shared httpx.AsyncClient (slow: minutes with 1000 workers)",
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if args.workers < 1 or args.rounds < 1 or args.interval <= 0 or args.timeout <= 0:
        parser.error("--workers and --rounds must be >= 1, --interval and --timeout > 0")
    if args.workers > 5000:
        parser.error("worker-sim serves at most 5000 workers")
    return args


# --- plumbing ---------------------------------------------------------------------------------


def cpu_seconds() -> float:
    """CPU time of this whole process (all threads: the checker runs on its own)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
        return True


def free_ports(count: int) -> int:
    """The first of `count` consecutive free ports (below the usual ephemeral range if can)."""
    for first in range(20_000, 32_000 - count, 1000):
        if all(_free(first + i) for i in range(count)):
            return first
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind((HOST, 0))
            first = int(probe.getsockname()[1])
        if first + count < 65_000 and all(_free(first + i) for i in range(count)):
            return first
    raise RuntimeError(f"no run of {count} free ports")


def nearest_rank(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(p * len(ordered)) - 1))]


@dataclass
class SimProcess:
    """`archipel worker-sim` serving `count` workers on consecutive ports, in its own process."""

    count: int
    base: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def urls(self) -> list[str]:
        return [f"http://{HOST}:{self.port + i}" for i in range(self.count)]

    @property
    def log_path(self) -> Path:
        return self.base / "worker-sim.log"

    def start(self, timeout: float = 60) -> None:
        self.port = free_ports(self.count)
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [ARCHIPEL, "worker-sim", "--port", str(self.port), "--count", str(self.count)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,  # inherits the raised RLIMIT_NOFILE
                env={**os.environ, "TMPDIR": str(self.base)},  # its blob dir, removed with ours
            )
        deadline = time.monotonic() + timeout
        last = self.port + self.count - 1
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker-sim exited early:\n{self.log_tail()}")
            try:
                with socket.create_connection((HOST, last), 0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"worker-sim did not listen on port {last} within {timeout:.0f} s")

    def log_tail(self, lines: int = 20) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def cpu_seconds(self) -> float:
        if self.process is None or self.process.poll() is not None:
            return 0.0
        try:
            times = psutil.Process(self.process.pid).cpu_times()
        except psutil.Error:
            return 0.0
        return float(times.user + times.system)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


# --- measurement ------------------------------------------------------------------------------


@dataclass
class Round:
    wall_s: float
    cpu_s: float
    failed: int | None  # None: the round raised (see error)
    slow: bool = False  # a slow-fields round (tags and version fetched too)
    telemetry_wall_s: float = 0.0
    telemetry_cpu_s: float = 0.0
    new_connections: int | None = None
    failures: list[str] = field(default_factory=list)
    latency_p50_ms: float | None = None  # what the checks recorded as the worker's latency
    latency_max_ms: float | None = None
    error: str | None = None


@dataclass
class Phase:
    name: str
    cold: Round | None = None
    rounds: list[Round] = field(default_factory=list)
    window_wall_s: float = 0.0
    window_cpu_s: float = 0.0
    sim_cpu_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        ps = [r for r in self.rounds if not r.slow]
        slow = [r for r in self.rounds if r.slow]
        telemetry_cpu = sum(r.telemetry_cpu_s for r in self.rounds)
        window = self.window_wall_s or float("nan")

        def times(rounds: list[Round]) -> dict[str, Any] | None:
            if not rounds:
                return None
            walls = [r.wall_s * 1000 for r in rounds]
            cpus = [r.cpu_s * 1000 for r in rounds]
            return {
                "rounds": len(rounds),
                "wall_p50_ms": nearest_rank(walls, 0.5),
                "wall_max_ms": max(walls),
                "cpu_p50_ms": nearest_rank(cpus, 0.5),
                "cpu_max_ms": max(cpus),
            }

        return {
            "name": self.name,
            "window_s": self.window_wall_s,
            "cpu_s": self.window_cpu_s,
            "cores": self.window_cpu_s / window,
            "cores_checks_only": (self.window_cpu_s - telemetry_cpu) / window,
            "telemetry_cpu_per_round_ms": 1000 * telemetry_cpu / len(self.rounds),
            "telemetry_wall_p50_ms": nearest_rank(
                [r.telemetry_wall_s * 1000 for r in self.rounds], 0.5
            ),
            "ps_rounds": times(ps),
            "slow_rounds": times(slow),
            "cpu_per_round_ms": 1000 * statistics.fmean(r.cpu_s for r in self.rounds),
            "failed_checks": sum(r.failed or 0 for r in self.rounds),
            "round_errors": [r.error for r in self.rounds if r.error],
            "sample_failures": [f for r in self.rounds for f in r.failures][:5],
            "cold_round": asdict(self.cold) if self.cold else None,
            "round_details": [asdict(r) for r in self.rounds],
            "new_connections": [r.new_connections for r in self.rounds],
            "recorded_latency_p50_ms": [r.latency_p50_ms for r in self.rounds],
            "recorded_latency_max_ms": [r.latency_max_ms for r in self.rounds],
            "worker_sim_cores": self.sim_cpu_s / window,
        }


def measure_phase(
    name: str,
    run_round: Callable[[], Round],
    after_round: Callable[[Round], None],
    args: argparse.Namespace,
    sim: SimProcess,
) -> Phase:
    """A cold round, then `args.rounds` rounds started every `args.interval` seconds.

    The window runs from the start of the first measured round to `rounds * interval` later:
    the process CPU over it, idle time included, is what checking every `interval` costs. A
    round that takes longer than the interval delays the next one (as the round lock would).
    """
    phase = Phase(name)
    start = time.perf_counter() + args.interval  # rounds start every interval, as scheduled
    phase.cold = run_round()
    after_round(phase.cold)
    sleep_until(start)
    cpu_start, sim_start = cpu_seconds(), sim.cpu_seconds()
    for index in range(args.rounds):
        sleep_until(start + index * args.interval)
        measured = run_round()
        after_round(measured)
        phase.rounds.append(measured)
    sleep_until(start + args.rounds * args.interval)
    phase.window_wall_s = time.perf_counter() - start
    phase.window_cpu_s = cpu_seconds() - cpu_start
    phase.sim_cpu_s = sim.cpu_seconds() - sim_start
    return phase


def sleep_until(moment: float) -> None:
    delay = moment - time.perf_counter()
    if delay > 0:
        time.sleep(delay)


def failures_of(results: Sequence[CheckResult]) -> tuple[int, list[str]]:
    failed = [f"{r.worker_id}: {r.reason}" for r in results if not r.ok]
    return len(failed), failed[:3]


def wait_for_checker_loop(checker: HealthChecker, timeout: float = 600) -> None:
    """Until every task on the checker's loop (bench-only access) is done."""

    async def others_done() -> None:
        me = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not me]
        if pending:
            await asyncio.wait(pending)

    asyncio.run_coroutine_threadsafe(others_done(), checker._loop).result(timeout=timeout)


class ConnectionCounter:
    """Connections the checker opened since last asked (reads httpx's pool: bench-only)."""

    def __init__(self, checker: HealthChecker) -> None:
        self._checker = checker
        self._seen: set[int] = set()
        self._alive: list[Any] = []  # keeps the seen objects alive so their ids stay unique

    def new(self) -> int | None:
        try:
            clients = list(self._checker._clients.values())
            connections = [
                connection._connection
                for client in clients
                for connection in client.client._client._transport._pool.connections
                if connection._connection is not None
            ]
        except AttributeError:  # another httpx/ollama layout: no figure
            return None
        fresh = [c for c in connections if id(c) not in self._seen]
        self._seen.update(id(c) for c in fresh)
        self._alive.extend(fresh)
        return len(fresh)


def archipel_phase(
    args: argparse.Namespace, sim: SimProcess, telemetry: RedisTelemetry | None
) -> tuple[Phase, str | None]:
    workers = [(str(uuid.uuid4()), url) for url in sim.urls]
    checker = HealthChecker(timeout=args.timeout)
    counter = ConnectionCounter(checker)
    ttl = max(30, int(args.interval * 3))
    try:

        def run_round() -> Round:
            cpu0, wall0 = cpu_seconds(), time.perf_counter()
            try:
                results = checker.check(workers)
            except TimeoutError:
                # check() gave up waiting (after timeout * 4 + 10 s) while the round goes on
                # on the checker's loop: wait for it to end, to time it and start clean.
                raised = time.perf_counter() - wall0
                wait_for_checker_loop(checker)
                wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
                return Round(
                    wall,
                    cpu,
                    None,
                    slow=checker._rounds % SLOW_FIELDS_EVERY == 1,
                    error=f"check() raised TimeoutError after {raised:.1f} s; "
                    f"the round itself ended after {wall:.1f} s",
                )
            wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
            failed, sample = failures_of(results)
            measured = Round(
                wall,
                cpu,
                failed,
                slow=checker._rounds % SLOW_FIELDS_EVERY == 1,
                failures=sample,
            )
            latencies = [r.latency_ms for r in results if r.latency_ms is not None]
            if latencies:
                measured.latency_p50_ms = nearest_rank(latencies, 0.5)
                measured.latency_max_ms = max(latencies)
            if telemetry is not None:
                cpu0, wall0 = cpu_seconds(), time.perf_counter()
                telemetry.record(results, ttl_seconds=ttl)
                measured.telemetry_wall_s = time.perf_counter() - wall0
                measured.telemetry_cpu_s = cpu_seconds() - cpu0
            return measured

        def after_round(measured: Round) -> None:
            measured.new_connections = counter.new()

        phase = measure_phase("archipel", run_round, after_round, args, sim)
        profile = profile_checker_round(checker, workers) if args.profile else None
        return phase, profile
    finally:
        checker.close()


def baseline_phase(
    name: str,
    args: argparse.Namespace,
    sim: SimProcess,
    fetch: Callable[[Any, str], Any],
    open_client: Callable[[], Any],
) -> Phase:
    """GET /api/ps to every worker at once with one shared client, JSON decoded."""
    loop = asyncio.new_event_loop()
    urls = [f"{url}/api/ps" for url in sim.urls]
    client = loop.run_until_complete(open_client())

    async def one(url: str) -> str | None:
        try:
            async with asyncio.timeout(args.timeout):
                body = await fetch(client, url)
            if not isinstance(body, dict) or "models" not in body:
                return f"{url}: unexpected answer"
            return None
        except Exception as error:
            return f"{url}: {type(error).__name__}: {error}"

    async def gather() -> list[str | None]:
        return list(await asyncio.gather(*(one(url) for url in urls)))

    try:

        def run_round() -> Round:
            cpu0, wall0 = cpu_seconds(), time.perf_counter()
            errors = loop.run_until_complete(gather())
            wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
            failed = [e for e in errors if e]
            return Round(wall, cpu, len(failed), failures=failed[:3])

        return measure_phase(name, run_round, lambda _: None, args, sim)
    finally:
        loop.run_until_complete(client.close() if name == "aiohttp" else client.aclose())
        loop.run_until_complete(asyncio.sleep(0.1))  # let aiohttp's transports close
        loop.close()


def aiohttp_phase(args: argparse.Namespace, sim: SimProcess) -> Phase:
    async def open_client() -> aiohttp.ClientSession:
        return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, limit_per_host=0))

    async def fetch(session: aiohttp.ClientSession, url: str) -> Any:
        async with session.get(url) as response:
            response.raise_for_status()
            return await response.json()

    return baseline_phase("aiohttp", args, sim, fetch, open_client)


def httpx_phase(args: argparse.Namespace, sim: SimProcess) -> Phase:
    async def open_client() -> httpx.AsyncClient:
        limits = httpx.Limits(
            max_connections=None,
            max_keepalive_connections=args.workers,
            keepalive_expiry=max(30.0, args.interval * 3),
        )
        return httpx.AsyncClient(limits=limits, timeout=args.timeout)

    async def fetch(client: httpx.AsyncClient, url: str) -> Any:
        response = await client.get(url)
        response.raise_for_status()
        return response.json()

    return baseline_phase("httpx-shared", args, sim, fetch, open_client)


# --- profile ----------------------------------------------------------------------------------


def profile_checker_round(checker: HealthChecker, workers: list[tuple[str, str]]) -> str:
    """cProfile one more round on the checker's own thread; by package, then by function."""
    profiler = cProfile.Profile()
    loop = checker._loop  # bench-only: enable the profiler on the checker's thread
    enabled = threading.Event()

    def enable() -> None:
        profiler.enable()
        enabled.set()

    loop.call_soon_threadsafe(enable)
    enabled.wait(5)
    wall0 = time.perf_counter()
    results = checker.check(workers)
    wall = time.perf_counter() - wall0
    disabled = threading.Event()

    def disable() -> None:
        profiler.disable()
        disabled.set()

    loop.call_soon_threadsafe(disable)
    disabled.wait(5)
    slow = checker._rounds % SLOW_FIELDS_EVERY == 1
    failed = sum(not r.ok for r in results)
    stats = pstats.Stats(profiler)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values()) or 1.0
    by_package: dict[str, float] = {}
    for (filename, _, function), entry in raw.items():
        key = package_of(filename, function)
        by_package[key] = by_package.get(key, 0.0) + entry[2]
    lines = [
        f"profile of one {'slow-fields' if slow else 'ps-only'} round on the checker thread "
        f"({wall * 1000:.0f} ms wall under the profiler, {total * 1000:.0f} ms profiled, "
        f"{failed} checks failed; cProfile inflates Python-level calls):",
        "  own time by package:",
    ]
    for key, seconds in sorted(by_package.items(), key=lambda item: -item[1])[:15]:
        lines.append(f"    {100 * seconds / total:5.1f}%  {key}")
    lines.append("  top functions by own time (calls, own ms, cumulative ms):")
    top = sorted(raw.items(), key=lambda item: -item[1][2])[:25]
    for (filename, line, function), (_, calls, own, cumulative, _) in top:
        where = short_path(filename)
        lines.append(
            f"    {calls:8d} {own * 1000:8.1f} {cumulative * 1000:8.1f}  {where}:{line} {function}"
        )
    lines.append("  cumulative time of selected calls (calls, cumulative ms):")
    wanted = (
        "_check",
        "ps",
        "_request",
        "send",
        "handle_async_request",
        "_connect",
        "connect_tcp",
        "model_validate",
        "__init__",
        "_seen",
        "build_request",
    )
    picked = [
        (key, entry)
        for key, entry in raw.items()
        if key[2] in wanted
        and any(p in key[0] for p in ("ollama", "httpx", "httpcore", "ollama_health", "pydantic"))
    ]
    for (filename, line, function), (_, calls, _, cumulative, _) in sorted(
        picked, key=lambda item: -item[1][3]
    )[:15]:
        lines.append(
            f"    {calls:8d} {cumulative * 1000:8.1f}  {short_path(filename)}:{line} {function}"
        )
    return "\n".join(lines)


STDLIB = sysconfig.get_paths()["stdlib"]


def package_of(filename: str, function: str) -> str:
    if filename == "~":  # a builtin: name it by what it is
        return f"builtin {function}"
    if "site-packages" in filename:
        return filename.split("site-packages" + os.sep, 1)[1].split(os.sep, 1)[0]
    if filename.startswith(STDLIB):
        name = filename[len(STDLIB) :].lstrip(os.sep).split(os.sep, 1)[0]
        return f"stdlib {name.removesuffix('.py')}"
    if filename.startswith(str(ROOT)):
        return f"archipel {Path(filename).relative_to(ROOT)}"
    return filename


def short_path(filename: str) -> str:
    if "site-packages" in filename:
        return filename.split("site-packages" + os.sep, 1)[1]
    if filename.startswith(STDLIB):
        return filename[len(STDLIB) :].lstrip(os.sep)
    if filename.startswith(str(ROOT)):
        return str(Path(filename).relative_to(ROOT))
    return filename


# --- run and report ---------------------------------------------------------------------------


@contextmanager
def embedded_redis(base: Path) -> Iterator[RedisTelemetry]:
    server = EmbeddedRedis(base)
    client: redis.Redis | None = None
    try:
        client = redis.Redis.from_url(server.start())
        yield RedisTelemetry(client)
    finally:
        if client is not None:
            client.close()
        server.stop()


def run(args: argparse.Namespace) -> dict[str, Any]:
    fd_limit = raise_fd_limit(2 * args.workers + 200)
    base = Path(tempfile.mkdtemp(prefix="arch-health-", dir="/tmp"))  # short socket paths
    sim = SimProcess(args.workers, base)
    try:
        with log_tail_on_failure("worker-sim", sim.log_tail):
            sim.start()
            with contextlib.ExitStack() as stack:
                telemetry = None if args.no_telemetry else stack.enter_context(embedded_redis(base))
                archipel, profile = archipel_phase(args, sim, telemetry)
            baseline = aiohttp_phase(args, sim)
            reference = httpx_phase(args, sim) if args.httpx_shared else None
    finally:
        sim.stop()
        shutil.rmtree(base, ignore_errors=True)
    results: dict[str, Any] = {
        "workers": args.workers,
        "rounds": args.rounds,
        "interval_s": args.interval,
        "timeout_s": args.timeout,
        "telemetry": not args.no_telemetry,
        "cpus": os.cpu_count(),
        "fd_limit": fd_limit,
        "target_cores": TARGET_CORES,
        "archipel": archipel.summary(),
        "baseline_aiohttp": baseline.summary(),
        "reference_httpx_shared": reference.summary() if reference else None,
    }
    a, b = results["archipel"], results["baseline_aiohttp"]
    ps_a, ps_b = a["ps_rounds"], b["ps_rounds"]
    results["ratio"] = {
        "cores_checks_only": a["cores_checks_only"] / b["cores"] if b["cores"] else None,
        "ps_round_cpu_p50": ps_a["cpu_p50_ms"] / ps_b["cpu_p50_ms"] if ps_a and ps_b else None,
        "ps_round_wall_p50": ps_a["wall_p50_ms"] / ps_b["wall_p50_ms"] if ps_a and ps_b else None,
    }
    if profile is not None:
        results["profile"] = profile
    return results


def report(results: dict[str, Any]) -> str:
    a = results["archipel"]
    b = results["baseline_aiohttp"]
    h = results["reference_httpx_shared"]
    ratio = results["ratio"]
    lines = [
        f"Health checks of {results['workers']} simulated workers every "
        f"{results['interval_s']:g} s, {results['rounds']} measured rounds per phase "
        f"({results['cpus']} CPUs; worker-sim in its own process, not counted)",
        "",
    ]

    def cores_line(label: str, phase: dict[str, Any], extra: str = "") -> str:
        return (
            f"  {label:<34} {phase['cores']:.3f} cores "
            f"({phase['cpu_s']:.2f} s CPU over {phase['window_s']:.1f} s){extra}"
        )

    def fmt_ratio(value: float | None) -> str:
        return f"{value:.1f}x" if value is not None else "n/a"

    met = "met" if a["cores_checks_only"] < TARGET_CORES else "MISSED"
    lines.append("CPU used on average over the window (idle time between rounds included):")
    if results["telemetry"]:
        lines.append(
            cores_line(
                "Archipel checks + Redis telemetry",
                a,
                f"; telemetry {a['telemetry_cpu_per_round_ms']:.0f} ms CPU/round, "
                f"{a['telemetry_wall_p50_ms']:.0f} ms wall p50",
            )
        )
    lines.append(
        f"  {'Archipel checks only':<34} {a['cores_checks_only']:.3f} cores  "
        f"(target < {TARGET_CORES}: {met}; {fmt_ratio(ratio['cores_checks_only'])} the baseline)"
    )
    lines.append(cores_line("baseline: shared aiohttp session", b))
    if h:
        lines.append(cores_line("reference: shared httpx client", h))
    lines.append(
        f"  {'worker-sim (other process)':<34} {a['worker_sim_cores']:.3f} cores during the "
        "Archipel phase"
    )
    lines.append("")
    lines.append("One round (wall time p50 / max; CPU time p50 / max):")

    def round_line(label: str, rounds: dict[str, Any] | None) -> str:
        if rounds is None:
            return f"  {label:<34} none measured"
        return (
            f"  {label:<34} {rounds['wall_p50_ms']:7.0f} / {rounds['wall_max_ms']:5.0f} ms wall"
            f"   {rounds['cpu_p50_ms']:7.0f} / {rounds['cpu_max_ms']:5.0f} ms CPU"
            f"   (n={rounds['rounds']})"
        )

    lines.append(round_line("Archipel, ps-only rounds", a["ps_rounds"]))
    lines.append(round_line("Archipel, slow-fields round", a["slow_rounds"]))
    cold = a["cold_round"]
    lines.append(
        f"  {'Archipel, first (cold) round':<34} {cold['wall_s'] * 1000:7.0f} ms wall"
        f"           {cold['cpu_s'] * 1000:7.0f} ms CPU"
    )
    if cold["error"]:
        lines.append(f"    first round: {cold['error']}")
    lines.append(round_line("baseline aiohttp, GET /api/ps", b["ps_rounds"]))
    if h:
        lines.append(round_line("reference httpx shared, /api/ps", h["ps_rounds"]))
    lines.append(
        f"  Archipel ps-only round vs baseline: CPU {fmt_ratio(ratio['ps_round_cpu_p50'])}, "
        f"wall {fmt_ratio(ratio['ps_round_wall_p50'])}"
    )
    lines.append("")
    connections = a["new_connections"]
    if all(c is not None for c in connections):
        lines.append(
            "Connections the checker opened per measured round: "
            + ", ".join(str(c) for c in connections)
            + f" (cold round: {cold['new_connections']})"
        )
    latencies = [x for x in a["recorded_latency_p50_ms"] if x is not None]
    if latencies:
        highest = max(x for x in a["recorded_latency_max_ms"] if x is not None)
        lines.append(
            "Latency the checks recorded per worker (the checker's own queueing included): "
            f"p50 {statistics.median(latencies):.0f} ms (median of rounds), max {highest:.0f} ms"
        )
    failed = [
        f"Archipel {a['failed_checks']} (cold round {cold['failed']})",
        f"aiohttp {b['failed_checks']}",
    ]
    if h:
        failed.append(f"httpx shared {h['failed_checks']}")
    lines.append("Failed checks in measured rounds: " + ", ".join(failed))
    for phase in (p for p in (a, b, h) if p):
        for error in phase["round_errors"]:
            lines.append(f"  {phase['name']}: measured round error: {error}")
        for failure in phase["sample_failures"]:
            lines.append(f"  {phase['name']}: {failure}")
    if "profile" in results:
        lines += ["", results["profile"]]
    return "\n".join(lines)


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
