"""Append throughput of the event store, next to raw PostgreSQL in the same run.

Two figures, each with a raw baseline measured on the same embedded PostgreSQL:

- commands/s: `SettingsService.set_flag` calls, one FlagChanged event each (load the settings
  aggregate, change one flag, save), against single-row INSERT + COMMIT transactions;
- events/s: aggregates of `--batch` events (one PoolSettings: Created + FlagChanged...) built
  and saved with one `store()` call each, against one COPY of as many equivalent rows.

Each round measures a baseline and then the application, one after the other; the figures are
the medians over `--rounds` rounds (the machine may be shared), with the range shown.

Targets on a 2-core machine: >= 800 commands/s and >= 20,000 events/s. Figures are printed,
never asserted; the exit code is 0 unless something fails.

    .venv/bin/python bench/append.py [--commands 2000] [--events 50000] [--batch 1000]
                                     [--rounds 3] [--json] [--hang-timeout 30]

This bench found that a store() larger than one socket write could hang forever in psycopg
3.3's pipeline mode; the event store now inserts outside pipeline mode
(`infrastructure.eventstore.PoolEventRecorder`). Each store() still runs under a watchdog, so a
regression shows up as an error instead of a hang.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import make_conninfo

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from application.settings import SettingsService  # noqa: E402
from domain.context import CommandContext, recording  # noqa: E402
from domain.flags import REGISTRY  # noqa: E402
from domain.settings import PoolSettings  # noqa: E402
from infrastructure.database import CORE_SCHEMA, Database  # noqa: E402
from infrastructure.embedded import EmbeddedPostgres  # noqa: E402
from infrastructure.eventstore import EVENT_STORE_NAME, PoolEventStore, postgres_env  # noqa: E402

TARGET_COMMANDS_PER_S = 800
TARGET_EVENTS_PER_S = 20_000
FLAG = "api.rate_limit_per_minute"  # an int flag; the bench alternates two values
VALUES = (200, 300)  # both differ from the default (120), so every command records an event
EVENTS_TABLE = f"{EVENT_STORE_NAME}_events"
BASELINE_TABLE = "bench_raw_events"
ACTOR = "cli:bench"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--commands", type=int, default=2000, help="single-event commands")
    parser.add_argument("--warmup", type=int, default=50, help="commands run before timing")
    parser.add_argument("--events", type=int, default=50_000, help="events in batched saves")
    parser.add_argument("--batch", type=int, default=1000, help="events per store() call")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; medians are reported")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--hang-timeout", type=float, default=30.0, help="seconds before a store() is hung"
    )
    args = parser.parse_args(argv)
    if min(args.commands, args.events, args.warmup, args.rounds) < 1 or args.batch < 2:
        parser.error("--commands, --events, --warmup, --rounds must be >= 1 and --batch >= 2")
    return args


class StoreHung(Exception):
    pass


@contextmanager
def watchdog(seconds: float, what: str) -> Iterator[None]:
    """Raise `StoreHung` in the main thread when the block takes longer than `seconds`."""

    def expire(signum: int, frame: Any) -> None:
        raise StoreHung(
            f"{what} did not return within {seconds:g} s: look for a client stuck in psycopg's "
            "pipeline mode (server side: 'ClientRead' with the events table lock held), the "
            "deadlock PoolEventRecorder avoids."
        )

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def timed(run: Callable[[], None]) -> float:
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


@contextmanager
def embedded_database() -> Iterator[str]:
    """A fresh database on an embedded server in a temp dir; everything removed afterwards."""
    data_dir = Path(tempfile.mkdtemp(prefix="archipel-bench-"))
    server = EmbeddedPostgres(data_dir)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pgserver's DeprecationWarnings, XDG_RUNTIME_DIR
            server_url = server.start()
        name = f"bench_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        yield make_conninfo(server_url, dbname=name)
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


class Bench:
    def __init__(self, url: str, args: argparse.Namespace) -> None:
        self.url = url
        self.args = args
        self.db = Database(url, max_size=2)
        self.db.open()
        self.db.apply_schema(CORE_SCHEMA)
        self.pool_id = self.db.pool_id()
        self.store = PoolEventStore(postgres_env(url), self.pool_id)
        self.settings = SettingsService(self.store)
        self.snapshot_seconds = 0.0
        self._time_snapshots()
        self.raw = psycopg.connect(url, autocommit=False)  # baselines: one plain connection
        self.commands_done = 0  # commands recorded so far, warm-up included
        self.batches_done = 0  # batch aggregates created so far, warm-up included

    def _time_snapshots(self) -> None:
        """Measure (not change) the time saves spend taking snapshots after recording."""
        take = self.store._take_snapshots

        def timed_take(*args: Any, **kwargs: Any) -> None:
            start = time.perf_counter()
            try:
                take(*args, **kwargs)
            finally:
                self.snapshot_seconds += time.perf_counter() - start

        self.store._take_snapshots = timed_take  # type: ignore[method-assign]

    def close(self) -> None:
        self.raw.close()
        self.store.close()
        self.db.close()

    def checkpoint(self) -> None:
        """Start each timed phase with the WAL flushed, so phases don't pay for each other."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("CHECKPOINT")

    def count(self, sql: str, params: tuple[Any, ...] = ()) -> int:
        with self.db.connection() as conn:
            row = conn.execute(sql, params).fetchone()
            return int(next(iter(row.values())))

    def snapshots_stored(self) -> int:
        if self.store.snapshots is None:  # no snapshot table without snapshotting
            return 0
        return self.count(f"SELECT count(*) FROM {EVENT_STORE_NAME}_snapshots")

    def server_settings(self) -> dict[str, str]:
        names = ("server_version", "fsync", "synchronous_commit", "wal_level", "shared_buffers")
        with self.db.connection() as conn:
            rows = conn.execute(
                "SELECT name, setting, unit FROM pg_settings WHERE name = ANY(%s)", (list(names),)
            ).fetchall()
        found = {r["name"]: r["setting"] + (f" x {r['unit']}" if r["unit"] else "") for r in rows}
        return {name: found.get(name, "?") for name in names}

    # --- the application ----------------------------------------------------------------------

    def run_commands(self, count: int) -> None:
        set_flag = self.settings.set_flag
        first = self.commands_done
        for i in range(first, first + count):
            # A fresh context per command, as the CLI or the API would make. The value
            # alternates, so each command changes the flag and records one event.
            set_flag(FLAG, VALUES[i % 2], CommandContext(actor=ACTOR, reason="bench"))
        self.commands_done += count

    def commands(self) -> dict[str, float]:
        n = self.args.commands
        self.checkpoint()
        self.snapshot_seconds = 0.0
        seconds = timed(lambda: self.run_commands(n))
        settings_id = PoolSettings.create_id(self.pool_id)
        stored = self.count(
            f"SELECT count(*) FROM {EVENTS_TABLE} WHERE originator_id = %s", (settings_id,)
        )
        if stored != 1 + self.commands_done:  # Created, then one FlagChanged per command
            raise RuntimeError(f"expected {1 + self.commands_done} settings events, got {stored}")
        return {"per_s": n / seconds, "snapshot_seconds": self.snapshot_seconds}

    def batch_sizes(self) -> list[int]:
        total, size = self.args.events, self.args.batch
        sizes = [size] * (total // size)
        if total % size:
            sizes.append(max(total % size, 2))
        return sizes

    def build(self, size: int) -> PoolSettings:
        """A new aggregate with `size` pending events: Created, then FlagChanged events."""
        spec = REGISTRY[FLAG]
        context = CommandContext(actor=ACTOR, reason="bench batch")
        with recording(context, self.pool_id):
            # Its own id (derived from this pool_id); events still carry the real origin pool.
            aggregate = PoolSettings(pool_id=f"{self.pool_id}:bench-batch-{self.batches_done}")
            for i in range(size - 1):
                aggregate.change_flag(spec, VALUES[i % 2])
        self.batches_done += 1
        return aggregate

    def save(self, aggregate: PoolSettings) -> None:
        events = len(aggregate.pending_events)
        with watchdog(self.args.hang_timeout, f"store() of {events} events"):
            self.store.store(aggregate)

    def batched(self) -> dict[str, float]:
        sizes = self.batch_sizes()
        events = sum(sizes)
        before = self.count(f"SELECT count(*) FROM {EVENTS_TABLE}")
        snapshots_before = self.snapshots_stored()
        self.checkpoint()
        saving = 0.0
        self.snapshot_seconds = 0.0
        start = time.perf_counter()
        for size in sizes:
            aggregate = self.build(size)
            saving -= time.perf_counter()
            self.save(aggregate)
            saving += time.perf_counter()
        seconds = time.perf_counter() - start
        stored = self.count(f"SELECT count(*) FROM {EVENTS_TABLE}") - before
        if stored != events:
            raise RuntimeError(f"expected {events} batched events, found {stored}")
        return {
            "per_s": events / seconds,
            "save_only_per_s": events / saving,
            "snapshot_seconds": self.snapshot_seconds,
            "snapshots_taken": self.snapshots_stored() - snapshots_before,
        }

    # --- raw baselines ------------------------------------------------------------------------

    def sample_event(self) -> tuple[str, bytes]:
        """Topic and state of a real stored FlagChanged event: baseline rows are as big."""
        with self.db.connection() as conn:
            row = conn.execute(
                f"SELECT topic, state FROM {EVENTS_TABLE} WHERE topic LIKE %s "
                "ORDER BY notification_id DESC LIMIT 1",
                ("%FlagChanged%",),
            ).fetchone()
        if row is None:
            raise RuntimeError("no FlagChanged event stored yet")
        return str(row["topic"]), bytes(row["state"])

    def create_baseline_table(self) -> None:
        # The same columns, keys and indexes as the event store's table.
        with self.raw.transaction():
            self.raw.execute(
                f"CREATE TABLE {BASELINE_TABLE} ("
                "originator_id uuid NOT NULL, originator_version bigint NOT NULL, "
                "topic text, state bytea, notification_id bigserial, "
                "PRIMARY KEY (originator_id, originator_version))"
            )
            self.raw.execute(
                f"CREATE UNIQUE INDEX {BASELINE_TABLE}_notification_id "
                f"ON {BASELINE_TABLE} (notification_id)"
            )

    def raw_inserts(self, count: int, topic: str, state: bytes) -> None:
        originator = uuid.uuid4()
        sql = (
            f"INSERT INTO {BASELINE_TABLE} (originator_id, originator_version, topic, state) "
            "VALUES (%s, %s, %s, %s)"
        )
        conn = self.raw
        for version in range(1, count + 1):
            conn.execute(sql, (originator, version, topic, state), prepare=True)
            conn.commit()

    def insert_baseline(self, topic: str, state: bytes) -> float:
        n = self.args.commands
        self.checkpoint()
        return n / timed(lambda: self.raw_inserts(n, topic, state))

    def raw_copy(self, sizes: list[int], topic: str, state: bytes, *, per_batch: bool) -> None:
        """COPY the rows in one statement and transaction, or one per batch like the store."""
        statement = (
            f"COPY {BASELINE_TABLE} (originator_id, originator_version, topic, state) "
            "FROM STDIN (FORMAT BINARY)"
        )
        conn = self.raw

        def copy(batch_sizes: list[int]) -> None:
            with conn.cursor() as cur, cur.copy(statement) as copy:
                copy.set_types(["uuid", "int8", "text", "bytea"])
                for size in batch_sizes:
                    originator = uuid.uuid4()
                    for version in range(1, size + 1):
                        copy.write_row((originator, version, topic, state))

        if per_batch:
            for size in sizes:
                copy([size])
                conn.commit()
        else:
            copy(sizes)
            conn.commit()

    def copy_baseline(self, topic: str, state: bytes, *, per_batch: bool) -> float:
        sizes = self.batch_sizes()
        self.checkpoint()
        return sum(sizes) / timed(lambda: self.raw_copy(sizes, topic, state, per_batch=per_batch))

    # --- the whole run ------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        # Warm-ups: the settings aggregate is created, caches and prepared statements made.
        self.run_commands(self.args.warmup)
        topic, state = self.sample_event()
        self.create_baseline_table()
        self.raw_inserts(self.args.warmup, topic, state)
        self.save(self.build(self.args.batch))
        self.raw_copy([self.args.batch], topic, state, per_batch=False)

        rounds: dict[str, list[float]] = {}
        for _ in range(self.args.rounds):
            figures = {"insert_commit_per_s": self.insert_baseline(topic, state)}
            figures.update({f"command_{k}": v for k, v in self.commands().items()})
            figures["copy_per_s"] = self.copy_baseline(topic, state, per_batch=False)
            figures["copy_per_batch_per_s"] = self.copy_baseline(topic, state, per_batch=True)
            figures.update({f"batched_{k}": v for k, v in self.batched().items()})
            for key, value in figures.items():
                rounds.setdefault(key, []).append(value)
        m = {key: statistics.median(values) for key, values in rounds.items()}
        sizes = self.batch_sizes()
        return {
            "psycopg": psycopg.__version__,
            "server": self.server_settings(),
            "event_state_bytes": len(state),
            "rounds": self.args.rounds,
            "commands": {
                "commands_per_round": self.args.commands,
                "per_s": summary(rounds["command_per_s"]),
                "snapshot_seconds": summary(rounds["command_snapshot_seconds"]),
                "baseline_insert_commit_per_s": summary(rounds["insert_commit_per_s"]),
                "ratio_to_baseline": m["command_per_s"] / m["insert_commit_per_s"],
                "target_per_s": TARGET_COMMANDS_PER_S,
                "target_met": m["command_per_s"] >= TARGET_COMMANDS_PER_S,
            },
            "batched": {
                "events_per_round": sum(sizes),
                "batches_per_round": len(sizes),
                "batch_size": self.args.batch,
                "per_s": summary(rounds["batched_per_s"]),
                "save_only_per_s": summary(rounds["batched_save_only_per_s"]),
                "snapshot_seconds": summary(rounds["batched_snapshot_seconds"]),
                "snapshots_per_round": m["batched_snapshots_taken"],
                "baseline_copy_per_s": summary(rounds["copy_per_s"]),
                "baseline_copy_per_batch_per_s": summary(rounds["copy_per_batch_per_s"]),
                "ratio_to_baseline": m["batched_per_s"] / m["copy_per_s"],
                "save_only_ratio_to_baseline": m["batched_save_only_per_s"] / m["copy_per_s"],
                "target_per_s": TARGET_EVENTS_PER_S,
                "target_met": m["batched_per_s"] >= TARGET_EVENTS_PER_S,
            },
        }


def report(results: dict[str, Any]) -> str:
    c, b = results["commands"], results["batched"]
    server = ", ".join(f"{k}={v}" for k, v in results["server"].items())

    def rate(figure: dict[str, Any], unit: str, what: str) -> str:
        spread = f"[{figure['min']:,.0f} - {figure['max']:,.0f}]"
        return f"  {figure['median']:>10,.0f} {unit:<10} {spread:<21} {what}"

    def verdict(ok: bool) -> str:
        return "MET" if ok else "MISSED"

    batched_secs = b["events_per_round"] / b["save_only_per_s"]["median"]
    return "\n".join(
        [
            "Archipel append benchmark (embedded PostgreSQL on a unix socket)",
            f"  server: {server}",
            f"  psycopg {results['psycopg']}",
            f"  event state {results['event_state_bytes']} bytes (baseline rows the same); "
            f"medians of {results['rounds']} rounds, [min - max]",
            "",
            f"Single-event commands (SettingsService.set_flag, {c['commands_per_round']:,} "
            "per round):",
            rate(c["per_s"], "commands/s", "application"),
            rate(c["baseline_insert_commit_per_s"], "rows/s", "raw INSERT + COMMIT, one row each"),
            f"  ratio {c['ratio_to_baseline']:.2f} of raw; "
            f"{c['snapshot_seconds']['median']:.2f} s of "
            f"{c['commands_per_round'] / c['per_s']['median']:.2f} s spent taking snapshots",
            f"  target >= {c['target_per_s']:,} commands/s: {verdict(c['target_met'])}",
            "",
            f"Batched saves ({b['batches_per_round']} x store() of {b['batch_size']:,} events, "
            f"{b['events_per_round']:,} events per round):",
            rate(b["per_s"], "events/s", "application, build + save"),
            rate(b["save_only_per_s"], "events/s", "application, save only"),
            rate(b["baseline_copy_per_s"], "rows/s", "raw COPY, one statement"),
            rate(b["baseline_copy_per_batch_per_s"], "rows/s", "raw COPY, one per batch"),
            f"  ratio {b['ratio_to_baseline']:.3f} of raw COPY (save only "
            f"{b['save_only_ratio_to_baseline']:.3f}); {b['snapshot_seconds']['median']:.2f} s "
            f"of {batched_secs:.2f} s saving spent taking {b['snapshots_per_round']:.0f} snapshots",
            f"  target >= {b['target_per_s']:,} events/s: {verdict(b['target_met'])}",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with embedded_database() as url:
        bench = Bench(url, args)
        try:
            results = bench.run()
        except StoreHung as error:
            print(f"bench/append.py: {error}", file=sys.stderr)
            return 1
        finally:
            bench.close()
    print(json.dumps(results, indent=2) if args.json else report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
