"""Replication throughput from pool A to pool B, next to raw COPY in the same run.

One embedded PostgreSQL (two databases) and one embedded Redis (two logical databases) in a
temp dir; two real pools opened on them with `open_pool`. Then:

1. On A, `--events` replicated-scope events are recorded: Worker aggregates of 1,000 events
   each (registered, then edited), one `store()` per aggregate.
2. A's `federation_log` projection builds the chained log from them (`catch_up()`): the log
   building rate is the first figure.
3. The core figure, events/s from A to B: B is paired with A (an invite on B, accepted with
   A's identity) and runs the real `infrastructure.replication.pull`, with a `peer_client`
   that answers `GET /federation/v1/log` in process with `serve_log` on A (read + one
   signature per batch) and hands the batch to `pull` without JSON or HTTP. So each batch goes
   through what a real pull does: B's high-water mark, `check_batch` (schema, signature,
   chain), authorisation (`may_send`), `apply_batch` on B (peer_log, high-water mark and
   `cluster_workers_view`, one transaction) and the change notice on Redis. The time of each
   stage is shown (serve_log, check_batch, apply_batch and, inside it, chain hashes and cluster
   view statements, timed by wrapping them for the run), and the end state on B is checked:
   seq and head hash as on A, every row, every worker's last name, no rejected batch.
4. Baseline: raw COPY of the same rows (origin, seq, event jsonb, hash) into a copy of B's
   `peer_log` table (`LIKE peer_log INCLUDING ALL`), in one statement and one per batch.

Each round empties B's replicated tables, then times the baselines and the pull; figures are
medians over `--rounds`, with the range. The cost of the primitives over the same events
(canonical encoding, chain hashes, Ed25519 sign/verify, JSON of the HTTP body) is printed to
explain where the time goes; `--profile` adds a cProfile of one more pull.

`--http` adds a separate figure through two real `archipel serve` processes (each with its own
embedded servers) paired over loopback HTTP: the events are recorded on A and its log is
built first; then the pools are paired, A tells B it has news, and the figure is the time
until B's high-water mark reaches A's log head.

Target on this machine: >= 20,000 events/s for the core figure (one signature per batch).
Figures are printed, never asserted; the exit code is 0 unless something fails.

    .venv/bin/python bench/replication.py [--events 50000] [--batch 500] [--rounds 3]
                                          [--http] [--profile] [--json]
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import io
import json
import logging
import pstats
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import nacl.signing
import psycopg
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import domain.canonical as canonical_module  # noqa: E402
from application.federation import PeerIdentity  # noqa: E402
from bench.serve import ServeProcess  # noqa: E402
from domain.canonical import GENESIS, canonical, chain_hash, encode  # noqa: E402
from domain.context import CommandContext, recording  # noqa: E402
from domain.workers import Worker  # noqa: E402
from infrastructure import replication  # noqa: E402
from infrastructure.bootstrap import Pool, open_pool  # noqa: E402
from infrastructure.config import BootstrapConfig  # noqa: E402
from infrastructure.embedded import EmbeddedPostgres, EmbeddedRedis  # noqa: E402
from infrastructure.federation import (  # noqa: E402
    FederationRefused,
    unb64,
    verify,
)
from infrastructure.replication import BATCH_LIMIT  # noqa: E402
from projections.federation import log_hash_at, log_head  # noqa: E402

TARGET_EVENTS_PER_S = 20_000
EVENTS_PER_WORKER = 1000  # events per Worker aggregate, saved with one store()
ACTOR = "cli:bench"
BASELINE_TABLE = "peer_log_baseline"
PASSWORD = "vivid-otter-maps-42"
STAGES = ("serve", "verify", "apply", "other")
APPLY_PARTS = ("apply_rehash", "apply_project")
PARTS = (*APPLY_PARTS, "apply_rest")
STAGE_TEXT = {
    "serve": "serve_log on A: read rows + sign the header",
    "verify": "check_batch: schema + signature + chain",
    "apply": "apply_batch on B, one transaction per batch:",
    "apply_rehash": "  chain hashes (reused from the checks)",
    "apply_project": "  cluster_workers_view, folded per worker",
    "apply_rest": "  peer_log COPY, mark, batch record",
    "other": "the rest of pull: mark read, may_send, Redis",
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000, help="events recorded on A")
    parser.add_argument(
        "--batch", type=int, default=BATCH_LIMIT, help=f"events per pulled batch (<= {BATCH_LIMIT})"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds; medians are reported")
    parser.add_argument("--http", action="store_true", help="also measure two real servers")
    parser.add_argument("--profile", action="store_true", help="cProfile one more pull")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    if args.events < 1 or args.rounds < 1:
        parser.error("--events and --rounds must be >= 1")
    if not 1 <= args.batch <= BATCH_LIMIT:
        parser.error(f"--batch must be from 1 to {BATCH_LIMIT} (what serve_log gives at most)")
    return args


def timed(run: Callable[[], Any]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "rounds": values,
    }


def quiet_start(start: Callable[[], str]) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pgserver's DeprecationWarnings, XDG_RUNTIME_DIR
        return start()


def generate(pool: Pool, events: int) -> dict[str, str]:
    """Record `events` Worker events on `pool`; returns each worker's final name by id."""
    context = CommandContext(actor=ACTOR, reason="bench")
    names: dict[str, str] = {}
    made = 0
    while made < events:
        size = min(EVENTS_PER_WORKER, events - made)
        index = len(names)
        with recording(context, pool.pool_id):
            worker = Worker(
                url=f"http://gpu-{index}.bench.example:11434",
                name=f"gpu-{index}",
                labels=["bench"],
                capacity=1,
            )
            for i in range(size - 1):  # every edit changes the profile: one event each
                worker.edit(f"gpu-{index}-{i % 2}", ["bench", f"rev-{i % 2}"], 1 + i % 4)
        pool.store.store(worker)
        names[str(worker.id)] = worker.name
        made += size
    return names


# --- A answering B in process ----------------------------------------------------------------


class InProcessAnswer(httpx.Response):
    """What `pull` reads of a 200 answer, with the body as A's serve_log made it (no JSON)."""

    def __init__(self, body: Any) -> None:
        super().__init__(200)
        self._body = body

    def json(self, **kwargs: Any) -> Any:
        return self._body


class InProcessPeer:
    """B's `peer_client`: answers `GET /federation/v1/log` with serve_log on A, no HTTP."""

    def __init__(self, origin: Pool, requester: str) -> None:
        self._origin = origin
        self._requester = requester

    def call(
        self,
        url: str,
        destination: str,
        method: str,
        path: str,
        payload: Any = None,
        timeout: float = 30,
    ) -> httpx.Response:
        parts = urlsplit(path)
        if (method, parts.path) != ("GET", "/federation/v1/log"):
            raise FederationRefused(f"the in-process peer only serves its log, not {path}")
        if destination != self._origin.pool_id:
            raise FederationRefused("this request is meant for another pool")
        query = {k: int(v[0]) for k, v in parse_qs(parts.query).items()}
        body = replication.serve_log(
            self._origin,
            self._origin.signer,
            self._requester,
            query.get("after", 0),
            query.get("limit", replication.BATCH_LIMIT),
        )
        return InProcessAnswer(body)


@contextmanager
def instrumented(spent: dict[str, float], batch: int) -> Iterator[None]:
    """Time what `pull` calls: serve_log, check_batch, apply_batch (once per batch) and, inside
    apply_batch, the chain hashes and the cluster view statements (once per event, about 1 us
    of overhead each); and make `pull` ask for `batch` events at a time."""
    targets = [
        ("serve", replication, "serve_log"),
        ("verify", replication, "check_batch"),
        ("apply", replication, "apply_batch"),
        ("apply_project", replication, "fold_cluster_workers"),
        ("apply_rehash", canonical_module, "chain_hash"),  # apply_batch imports it when called
        ("apply_rehash", replication, "chain_hash"),  # (in case it is imported at module level)
    ]
    saved = [(m, name, getattr(m, name)) for _, m, name in targets if hasattr(m, name)]
    saved.append((replication, "BATCH_LIMIT", replication.BATCH_LIMIT))

    def timing(stage: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def run(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[stage] += time.perf_counter() - start

        return run

    try:
        for stage, module, name in targets:
            if callable(getattr(module, name, None)):
                setattr(module, name, timing(stage, getattr(module, name)))
        replication.BATCH_LIMIT = batch
        yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)


# --- the in-process bench -------------------------------------------------------------------


class Bench:
    def __init__(self, base: Path, args: argparse.Namespace) -> None:
        self.base = base
        self.args = args
        self.postgres = EmbeddedPostgres(base)
        self.redis_server = EmbeddedRedis(base)
        self.pools: list[Pool] = []
        self.raw: psycopg.Connection[Any] | None = None

    # setup / teardown

    def start(self) -> None:
        self.server_url = quiet_start(self.postgres.start)
        quiet_start(self.redis_server.start)
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            for name in ("pool_a", "pool_b"):
                conn.execute(f"CREATE DATABASE {name}")
        for index, name in enumerate(("a", "b"), start=1):
            config = BootstrapConfig(
                data_dir=self.base / name,
                database_url=make_conninfo(self.server_url, dbname=f"pool_{name}"),
                redis_url=f"unix://{self.redis_server.socket}?db={index}",
            )
            self.pools.append(open_pool(config))
        self.a, self.b = self.pools
        self.a.identity.generate()  # A signs its batches with its identity key
        self.public_key = self.a.signer.public_key()
        # B pairs with A as it would on A's request (an invite, then A's identity pinned), and
        # reaches A in process: its pull gets A's serve_log answers without HTTP.
        code, _ = self.b.federation.issue_invite(CommandContext(actor=ACTOR, reason="bench"))
        identity = PeerIdentity(
            self.a.pool_id, "http://pool-a.bench.invalid", "bench-a", "ed25519:1", self.public_key
        )
        self.b.federation.accept_pairing(identity, code)
        self.b.peer_client = InProcessPeer(self.a, self.b.pool_id)  # type: ignore[assignment]
        self.raw = psycopg.connect(self.b.database.url, autocommit=False)

    def close(self) -> None:
        if self.raw is not None:
            self.raw.close()
        for pool in reversed(self.pools):
            pool.close()
        self.redis_server.stop()
        self.postgres.stop()

    def checkpoint(self) -> None:
        """Start each timed phase with the WAL flushed, so phases don't pay for each other."""
        with psycopg.connect(self.server_url, autocommit=True) as conn:
            conn.execute("CHECKPOINT")

    def server_settings(self) -> dict[str, str]:
        names = ("server_version", "fsync", "synchronous_commit", "wal_level", "shared_buffers")
        with self.b.database.connection() as conn:
            rows = conn.execute(
                "SELECT name, setting, unit FROM pg_settings WHERE name = ANY(%s)", (list(names),)
            ).fetchall()
        found = {r["name"]: r["setting"] + (f" x {r['unit']}" if r["unit"] else "") for r in rows}
        return {name: found.get(name, "?") for name in names}

    # A: events and the log

    def prepare(self) -> dict[str, Any]:
        self.checkpoint()
        start = time.perf_counter()
        self.names = generate(self.a, self.args.events)
        generating = time.perf_counter() - start
        runner = self.a.runner("federation_log")
        self.checkpoint()
        building = timed(runner.catch_up)
        with self.a.database.connection() as conn:
            self.head = log_head(conn)
            rows = conn.execute(
                "SELECT seq, event::text AS event, hash FROM federation_log ORDER BY seq"
            ).fetchall()
            self.head_hash = log_hash_at(conn, self.head)
        if self.head != self.args.events or len(rows) != self.head:
            raise RuntimeError(f"A's log has {self.head} events, expected {self.args.events}")
        origin = self.a.pool_id
        self.rows = [(origin, r["seq"], r["event"], r["hash"]) for r in rows]
        self.events = [json.loads(r[2]) for r in self.rows]
        with self.raw.transaction():  # type: ignore[union-attr]
            self.raw.execute(  # type: ignore[union-attr]
                f"CREATE TABLE {BASELINE_TABLE} (LIKE peer_log INCLUDING ALL)"
            )
        return {
            "generate_per_s": self.head / generating,
            "log_build_per_s": self.head / building,
            "log_build_seconds": building,
            "workers": len(self.names),
            "event_bytes": statistics.mean(len(r[2].encode()) for r in self.rows),
        }

    # B: the baseline

    def raw_copy(self, *, per_batch: bool) -> float:
        conn = self.raw
        assert conn is not None
        statement = f"COPY {BASELINE_TABLE} (origin, seq, event, hash) FROM STDIN"
        with conn.transaction():
            conn.execute(f"TRUNCATE {BASELINE_TABLE}")
        self.checkpoint()
        size = self.args.batch if per_batch else len(self.rows)
        start = time.perf_counter()
        for first in range(0, len(self.rows), size):
            with conn.cursor() as cur, cur.copy(statement) as copy:
                for row in self.rows[first : first + size]:
                    copy.write_row(row)
            conn.commit()
        seconds = time.perf_counter() - start
        copied = conn.execute(f"SELECT count(*) FROM {BASELINE_TABLE}").fetchone()
        conn.commit()
        if copied is None or copied[0] != len(self.rows):
            raise RuntimeError(f"the baseline copied {copied} rows, expected {len(self.rows)}")
        return len(self.rows) / seconds

    # B pulls from A

    def reset_b(self) -> None:
        """Empty what B holds of A's log (not the pairing): the next pull starts from seq 0."""
        with self.b.database.connection() as conn:
            names = [
                r["tablename"]
                for r in conn.execute(
                    "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND ("
                    "tablename LIKE 'peer\\_%%' OR tablename LIKE 'cluster\\_%%' OR "
                    "tablename = 'rejected_batches') AND tablename <> %s",
                    (BASELINE_TABLE,),
                ).fetchall()
            ]
            conn.execute(f"TRUNCATE {', '.join(names)}")
        backoff = getattr(replication, "BACKOFF", None)
        for key in self.b.redis.scan_iter(f"{backoff}*") if backoff else ():
            self.b.redis.delete(key)

    def pull(self) -> dict[str, float]:
        """`replication.pull` on B, with A answering in process; the time of each stage."""
        spent = dict.fromkeys((*STAGES, *APPLY_PARTS), 0.0)
        with instrumented(spent, self.args.batch):
            start = time.perf_counter()
            applied = replication.pull(self.b, self.a.pool_id)
            seconds = time.perf_counter() - start
        if applied != self.head:
            raise RuntimeError(f"B applied {applied} events, expected {self.head}")
        spent["other"] = seconds - sum(spent[s] for s in STAGES)
        spent["apply_rest"] = spent["apply"] - sum(spent[s] for s in APPLY_PARTS)
        return {"seconds": seconds, **spent}

    def check_b(self) -> None:
        """B holds A's whole log, with the same head hash, and every worker's last profile."""
        with self.b.database.connection() as conn:
            mark = conn.execute(
                "SELECT seq, head_hash, origin_head_seq FROM peer_positions WHERE origin = %s",
                (self.a.pool_id,),
            ).fetchone()
            stored = conn.execute("SELECT count(*) AS n FROM peer_log").fetchone()["n"]
            workers = {
                r["worker_id"]: r["name"]
                for r in conn.execute(
                    "SELECT worker_id, name FROM cluster_workers_view WHERE pool_id = %s",
                    (self.a.pool_id,),
                ).fetchall()
            }
            rejected = conn.execute("SELECT count(*) AS n FROM rejected_batches").fetchone()["n"]
        problems = []
        if mark is None or mark["seq"] != self.head or mark["head_hash"] != self.head_hash:
            problems.append(f"high-water mark {mark} is not seq {self.head} / {self.head_hash}")
        if stored != self.head:
            problems.append(f"peer_log has {stored} rows, expected {self.head}")
        if workers != self.names:
            problems.append(f"cluster_workers_view has {len(workers)} workers, not A's")
        if rejected:
            problems.append(f"{rejected} rejected batches")
        if problems:
            raise RuntimeError("B after the pull: " + "; ".join(problems))

    def replicate(self) -> dict[str, float]:
        self.reset_b()
        self.checkpoint()
        figures = self.pull()
        self.check_b()
        return figures

    # where the time goes

    def primitives(self) -> dict[str, float]:
        """Seconds for the building blocks of a pull, over the same events and batches."""
        events, size, signer = self.events, self.args.batch, self.a.signer
        batches = [events[i : i + size] for i in range(0, len(events), size)]
        header = replication.serve_log(self.a, signer, self.b.pool_id, 0, size)["header"]
        signature = signer.sign("archipel/batch/v1", header)
        message = canonical("archipel/batch/v1", header)
        key = nacl.signing.VerifyKey(unb64(self.public_key))
        encoded = [encode(e) for e in events]

        def chain() -> None:
            running = GENESIS
            for event in events:
                running = chain_hash(running, event)

        def verify_headers() -> None:
            for _ in range(rounds):
                verify(self.public_key, "archipel/batch/v1", header, signature)

        def sha_only() -> None:
            running = GENESIS
            for blob in encoded:
                running = hashlib.sha256(
                    b"archipel/chain/v1\n" + running.encode() + blob
                ).hexdigest()

        rounds = len(batches)
        wire = [
            json.dumps({"header": header, "events": b, "signature": signature}) for b in batches
        ]
        return {
            "events": len(events),
            "batches": rounds,
            "canonical_encode": timed(lambda: [encode(e) for e in events]),
            "chain_hash": timed(chain),
            "sha256_only": timed(sha_only),
            "sign_headers": timed(
                lambda: [signer.sign("archipel/batch/v1", header) for _ in range(rounds)]
            ),
            "verify_headers": timed(verify_headers),
            "verify_raw_ed25519": timed(
                lambda: [key.verify(message, unb64(signature)) for _ in range(rounds)]
            ),
            "json_dumps_body": timed(
                lambda: [
                    json.dumps({"header": header, "events": b, "signature": signature})
                    for b in batches
                ]
            ),
            "json_loads_body": timed(lambda: [json.loads(text) for text in wire]),
        }

    def profile(self) -> str:
        self.reset_b()
        self.checkpoint()
        profiler = cProfile.Profile()
        profiler.enable()
        self.pull()
        profiler.disable()
        self.check_b()
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.strip_dirs().sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(30)
        return out.getvalue()

    def run(self) -> dict[str, Any]:
        prepared = self.prepare()
        self.raw_copy(per_batch=False)  # warm-ups: caches, prepared plans
        self.replicate()
        rounds: dict[str, list[float]] = {}
        stages: list[dict[str, float]] = []
        for _ in range(self.args.rounds):
            figures = {
                "copy_per_s": self.raw_copy(per_batch=False),
                "copy_per_batch_per_s": self.raw_copy(per_batch=True),
            }
            pulled = self.replicate()
            figures["pull_per_s"] = self.head / pulled["seconds"]
            figures["pull_seconds"] = pulled["seconds"]
            stages.append({s: pulled[s] for s in (*STAGES, *PARTS)})
            for key, value in figures.items():
                rounds.setdefault(key, []).append(value)
        m = {key: statistics.median(values) for key, values in rounds.items()}
        seconds = rounds["pull_seconds"]
        middle = sorted(range(len(seconds)), key=seconds.__getitem__)[(len(seconds) - 1) // 2]
        results: dict[str, Any] = {
            "psycopg": psycopg.__version__,
            "server": self.server_settings(),
            "rounds": self.args.rounds,
            "events": self.head,
            "batch_size": self.args.batch,
            "batches": self.head // self.args.batch + 1,  # the last one is short (or empty)
            "workers": prepared["workers"],
            "event_bytes": prepared["event_bytes"],
            "generate_per_s": prepared["generate_per_s"],
            "log_build_per_s": prepared["log_build_per_s"],
            "log_build_ratio_to_copy": prepared["log_build_per_s"] / m["copy_per_s"],
            "pull_per_s": summary(rounds["pull_per_s"]),
            "baseline_copy_per_s": summary(rounds["copy_per_s"]),
            "baseline_copy_per_batch_per_s": summary(rounds["copy_per_batch_per_s"]),
            "ratio_to_copy": m["pull_per_s"] / m["copy_per_s"],
            "ratio_to_copy_per_batch": m["pull_per_s"] / m["copy_per_batch_per_s"],
            "stage_seconds": stages[middle],  # of the median round: they add up
            "pull_seconds": seconds[middle],
            "primitive_seconds": self.primitives(),
            "target_per_s": TARGET_EVENTS_PER_S,
            "target_met": m["pull_per_s"] >= TARGET_EVENTS_PER_S,
        }
        if self.args.profile:
            results["profile"] = self.profile()
        return results


# --- two real servers over HTTP -------------------------------------------------------------


class Admin:
    """An admin's browser session on one pool: cookies, Origin and the CSRF header."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, headers={"Origin": url}, timeout=60)
        self.csrf = str(self.http.get("/api/auth/csrf").json()["csrf_token"])

    def post(self, path: str, body: Any = None) -> httpx.Response:
        return self.http.post(path, json=body, headers={"X-CSRF-Token": self.csrf})

    def onboard(self, pool_name: str) -> None:
        created = self.post(
            "/api/onboarding/admin",
            {"email": "bench@example.org", "display_name": "Bench", "password": PASSWORD},
        )
        if created.status_code != 201:
            raise RuntimeError(f"onboarding failed: {created.status_code} {created.text}")
        self.csrf = str(created.json()["session"]["csrf_token"])
        for path, body in (
            ("/api/onboarding/pool", {"pool_name": pool_name, "site": "bench"}),
            ("/api/onboarding/public-url", {"public_url": str(self.http.base_url).rstrip("/")}),
            ("/api/onboarding/identity", None),
            ("/api/onboarding/complete", None),
        ):
            answer = self.post(path, body)
            if answer.status_code != 200:
                raise RuntimeError(f"onboarding {path}: {answer.status_code} {answer.text}")

    def close(self) -> None:
        self.http.close()


def scalar(url: str, sql: str, params: tuple[Any, ...] = ()) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


def wait_for(what: str, done: Callable[[], bool], progress: Callable[[], Any], idle: float) -> None:
    """Poll `done`; give up when `progress()` has not changed for `idle` seconds."""
    last, since = progress(), time.monotonic()
    while not done():
        time.sleep(0.02)
        now = progress()
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since > idle:
            raise RuntimeError(f"{what}: no progress for {idle:.0f} s (stuck at {now})")


def http_figure(base: Path, args: argparse.Namespace) -> dict[str, Any]:
    servers = [ServeProcess(base / "ha"), ServeProcess(base / "hb")]
    admins: list[Admin] = []
    local: Pool | None = None
    try:
        for server, name in zip(servers, ("bench-a", "bench-b"), strict=True):
            server.start()
            admin = Admin(server.url)
            admin.onboard(name)
            admins.append(admin)
        a, b = servers
        alice, bob = admins
        # This process records A's events with A's own data dir (master key, identity) on the
        # servers A's serve started; A's serve projections build its log meanwhile.
        local = open_pool(
            BootstrapConfig(data_dir=a.data_dir, database_url=a.database_url, redis_url=a.redis_url)
        )

        def a_head() -> int:
            return int(scalar(a.database_url, "SELECT coalesce(max(seq), 0) FROM federation_log"))

        before = a_head()
        start = time.perf_counter()
        generate(local, args.events)
        generated = time.perf_counter() - start
        wait_for(
            "A's serve building its log",
            lambda: a_head() >= before + args.events,
            a_head,
            idle=60,
        )
        built = time.perf_counter() - start
        head = a_head()

        invite = bob.post("/api/federation/invites", {"reason": "bench"}).json()
        paired = alice.post(
            "/api/federation/peers", {"url": b.url, "code": invite["code"], "reason": "bench"}
        )
        if paired.status_code != 201:
            raise RuntimeError(f"pairing failed: {paired.status_code} {paired.text}")
        b_id = str(paired.json()["pool_id"])
        begin = time.perf_counter()
        local.peer_client.call(b.url, b_id, "POST", "/federation/v1/notify", {}, timeout=10)
        a_id = local.pool_id

        def b_seq() -> int:
            return int(
                scalar(
                    b.database_url,
                    "SELECT coalesce(max(seq), 0) FROM peer_positions WHERE origin = %s",
                    (a_id,),
                )
            )

        wait_for("B pulling A's log over HTTP", lambda: b_seq() >= head, b_seq, idle=60)
        seconds = time.perf_counter() - begin
        rejected = int(scalar(b.database_url, "SELECT count(*) FROM rejected_batches"))
        hashes = (
            scalar(
                b.database_url, "SELECT head_hash FROM peer_positions WHERE origin = %s", (a_id,)
            ),
            scalar(a.database_url, "SELECT hash FROM federation_log WHERE seq = %s", (head,)),
        )
        if rejected or hashes[0] != hashes[1]:
            raise RuntimeError(f"B over HTTP: {rejected} rejected batches, head hashes {hashes}")
        return {
            "events": head,
            "generate_per_s": args.events / generated,
            "log_ready_seconds": built,
            "pull_seconds": seconds,
            "pull_per_s": head / seconds,
        }
    except BaseException:
        for server in servers:
            tail = server.log_tail()
            if tail:
                print(f"--- last lines of {server.log_path} ---\n{tail}", file=sys.stderr)
        raise
    finally:
        if local is not None:
            local.close()
        for admin in admins:
            admin.close()
        for server in servers:
            server.stop()


# --- report ---------------------------------------------------------------------------------


def report(results: dict[str, Any]) -> str:
    server = ", ".join(f"{k}={v}" for k, v in results["server"].items())

    def rate(figure: dict[str, Any], unit: str, what: str) -> str:
        spread = f"[{figure['min']:,.0f} - {figure['max']:,.0f}]"
        return f"  {figure['median']:>10,.0f} {unit:<9} {spread:<21} {what}"

    pull, events = results["pull_seconds"], results["events"]
    lines = [
        "Archipel replication benchmark (pool A -> pool B, embedded PostgreSQL, unix sockets)",
        f"  server: {server}",
        f"  psycopg {results['psycopg']}; {events:,} events ({results['workers']} workers x "
        f"{EVENTS_PER_WORKER:,}), {results['event_bytes']:.0f} bytes of JSON each; "
        f"medians of {results['rounds']} rounds, [min - max]",
        "",
        "On A:",
        f"  {results['generate_per_s']:>10,.0f} events/s  recorded (Worker aggregates, "
        "one store() each)",
        f"  {results['log_build_per_s']:>10,.0f} events/s  log building (federation_log "
        f"catch_up: seq + hash chain), {results['log_build_ratio_to_copy']:.3f} of raw COPY",
        "",
        f"A -> B in process ({results['batches']} batches of {results['batch_size']}, "
        "one signature each):",
        rate(results["pull_per_s"], "events/s", "pulled, verified, applied and projected"),
        rate(results["baseline_copy_per_s"], "rows/s", "raw COPY into B, one statement"),
        rate(results["baseline_copy_per_batch_per_s"], "rows/s", "raw COPY into B, one per batch"),
        f"  ratio {results['ratio_to_copy']:.3f} of raw COPY "
        f"({results['ratio_to_copy_per_batch']:.3f} of COPY per batch)",
        f"  target >= {results['target_per_s']:,} events/s: "
        f"{'MET' if results['target_met'] else 'MISSED'}",
        "",
        f"Where the {pull:.2f} s of a pull go (median round):",
    ]
    stages = results["stage_seconds"]
    order = ("serve", "verify", "apply", *PARTS, "other")
    for stage, seconds in ((s, stages[s]) for s in order):
        lines.append(
            f"  {seconds:>7.3f} s {100 * seconds / pull:>5.1f} %  "
            f"{events / max(seconds, 1e-9):>10,.0f} "
            f"events/s  {STAGE_TEXT[stage]}"
        )
    p = results["primitive_seconds"]
    n, k = p["events"], p["batches"]
    lines += ["", f"Primitives over the same {n:,} events / {k} batches (one pass each):"]
    for name, text, count in (
        ("canonical_encode", "canonical JSON of each event", n),
        ("chain_hash", "chain hash of each event (canonical JSON + sha256)", n),
        ("sha256_only", "sha256 of pre-encoded events", n),
        ("sign_headers", "Ed25519 signature of a batch header", k),
        ("verify_headers", "verify a batch header (canonical + Ed25519)", k),
        ("verify_raw_ed25519", "Ed25519 verification alone", k),
        ("json_dumps_body", "json.dumps of the HTTP body (not in the core figure)", k),
        ("json_loads_body", "json.loads of the HTTP body (not in the core figure)", k),
    ):
        seconds = p[name]
        lines.append(f"  {seconds:>7.3f} s  {1e6 * seconds / count:>8.1f} us each  {text}")
    if "http" in results:
        h = results["http"]
        lines += [
            "",
            "A -> B through two `archipel serve` processes over loopback HTTP:",
            f"  {h['pull_per_s']:>10,.0f} events/s  {h['events']:,} events, from pairing + notify "
            f"to B's mark at A's head in {h['pull_seconds']:.2f} s",
            f"  ratio {h['pull_per_s'] / results['pull_per_s']['median']:.3f} of in process, "
            f"{h['pull_per_s'] / results['baseline_copy_per_s']['median']:.3f} of raw COPY",
            f"  (before pairing, A recorded them at {h['generate_per_s']:,.0f} events/s and "
            f"its serve had the log built {h['log_ready_seconds']:.1f} s after the first store)",
        ]
    if "profile" in results:
        lines += ["", "cProfile of one more pull:", results["profile"]]
    return "\n".join(lines)


@contextmanager
def temp_dir() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="arch-repl-", dir="/tmp"))  # short socket paths
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with temp_dir() as base:
        bench = Bench(base / "inproc", args)
        try:
            bench.start()
            results = bench.run()
        finally:
            bench.close()
        if args.http:
            results["http"] = http_figure(base, args)
    print(json.dumps(results, indent=2) if args.json else report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
