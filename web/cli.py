"""The `archipel` command line. Every command that touches a pool takes the bootstrap options."""

import functools
import gc
import inspect
import json
import logging
import os
import pwd
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from domain.context import CommandContext
from domain.errors import DomainError
from infrastructure.bootstrap import Pool, PoolRuntime, StartupError, open_pool
from infrastructure.config import BootstrapConfig, ConfigError, load_config
from projections.audit import AuditEntry, query_audit

app = typer.Typer(
    name="archipel",
    help="Archipel: the control plane of sovereign, on-prem LLM pools.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
config_app = typer.Typer(help="The bootstrap configuration.", no_args_is_help=True)
settings_app = typer.Typer(
    help="Runtime flags (the same ones as Advanced settings).", no_args_is_help=True
)
audit_app = typer.Typer(help="The audit trail: every event, who, why.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(settings_app, name="settings")
app.add_typer(audit_app, name="audit")
models_app = typer.Typer(help="The model catalog.", no_args_is_help=True)
app.add_typer(models_app, name="models")

F = TypeVar("F", bound=Callable[..., Any])

# The bootstrap options, shared by every pool command (see `pool_command`).
_BOOTSTRAP: list[tuple[str, Any]] = [
    (
        "config_file",
        Annotated[
            Path | None,
            typer.Option("--config", help="TOML file with bootstrap settings.", show_default=False),
        ],
    ),
    (
        "data_dir",
        Annotated[
            Path | None,
            typer.Option(
                help="Where embedded PostgreSQL, Redis and secrets live [default: ./var].",
                show_default=False,
            ),
        ],
    ),
    (
        "database_url",
        Annotated[
            str | None,
            typer.Option(
                help="External PostgreSQL with pgvector [default: embedded].", show_default=False
            ),
        ],
    ),
    (
        "redis_url",
        Annotated[
            str | None, typer.Option(help="External Redis [default: embedded].", show_default=False)
        ],
    ),
    (
        "host",
        Annotated[
            str | None,
            typer.Option(help="Listen address [default: 127.0.0.1].", show_default=False),
        ],
    ),
    (
        "port",
        Annotated[
            int | None, typer.Option(help="Listen port [default: 8080].", show_default=False)
        ],
    ),
    (
        "public_url",
        Annotated[
            str | None,
            typer.Option(help="URL browsers and peers use to reach this pool.", show_default=False),
        ],
    ),
    (
        "roles",
        Annotated[
            str | None,
            typer.Option(
                help="Comma-separated roles: web,workers,projections,scheduler.", show_default=False
            ),
        ],
    ),
]
_BOOTSTRAP_NAMES = [name for name, _ in _BOOTSTRAP]


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def pool_command(function: F) -> F:
    """Give a command the bootstrap options; it receives the loaded `BootstrapConfig` first.

    Bad configuration exits 2, a pool that cannot start or a refused command exits 1, each
    with one line on stderr.
    """
    signature = inspect.signature(function)
    own = [p for p in signature.parameters.values() if p.name != "config"]
    extra = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=kind)
        for name, kind in _BOOTSTRAP
    ]

    @functools.wraps(function)
    def wrapper(**kwargs: Any) -> Any:
        given = {name: kwargs.pop(name) for name in _BOOTSTRAP_NAMES}
        config_file = given.pop("config_file")
        try:
            config = load_config(config_file, given)
        except ConfigError as error:
            raise fail(str(error), 2) from None
        try:
            return function(config, **kwargs)
        except ConfigError as error:
            raise fail(str(error), 2) from None
        except (StartupError, DomainError) as error:
            raise fail(str(error)) from None

    wrapper.__signature__ = signature.replace(parameters=own + extra)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {
        **{p.name: p.annotation for p in own},
        **dict(_BOOTSTRAP),
        "return": None,
    }
    del wrapper.__wrapped__  # type: ignore[attr-defined]  # typer must see the new signature
    return wrapper  # type: ignore[return-value]


def cli_actor() -> str:
    # From the OS account, not from $USER: project code reads no environment variables.
    name = pwd.getpwuid(os.geteuid()).pw_name
    return f"cli:{name}"


@contextmanager
def opened(config: BootstrapConfig) -> Iterator[Pool]:
    pool = open_pool(config)
    try:
        yield pool
    finally:
        pool.close()


def _setup_logging() -> None:
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("pgserver").setLevel(logging.WARNING)


@app.command()
@pool_command
def serve(config: BootstrapConfig) -> None:
    """Run a pool: web, projections, background workers and scheduler (all roles by default)."""
    _setup_logging()
    _run_roles(config, config.roles)


@app.command("worker")
@pool_command
def worker(
    config: BootstrapConfig,
    threads: Annotated[int, typer.Option(min=1, max=64, help="Worker threads.")] = 2,
) -> None:
    """Run background workers only, as a separate process (scale-out)."""
    _setup_logging()
    # A config file's roles describe `serve`; only an explicit --roles changes a worker's.
    roles = config.roles if config.source_of("roles") == "flag" else ("workers",)
    _run_roles(config, roles, threads)


def _run_roles(config: BootstrapConfig, roles: tuple[str, ...], threads: int = 2) -> None:
    pool = open_pool(config)
    runtime = PoolRuntime(pool, roles, worker_threads=threads)
    try:
        runtime.start()
        if "web" in roles:
            import uvicorn

            from web.app import create_app

            logging.getLogger(__name__).info(
                "pool %s serving on %s", pool.pool_id, config.effective_public_url
            )
            server = _uvicorn_server_class()(
                uvicorn.Config(
                    create_app(runtime),
                    host=config.host,
                    port=config.port,
                    lifespan="on",
                    log_level="info",
                    access_log=False,
                )
            )
            _tune_garbage_collector()
            server.run()
        else:
            _wait_for_signal()
    finally:
        runtime.stop()
        pool.close()


def _tune_garbage_collector() -> None:
    """Fewer, cheaper collections for a long-running server: what exists at startup (modules,
    the app, the pool) is frozen out of every collection, and the youngest generation is
    collected every 20,000 allocations rather than 700. A full collection over hundreds of
    live SSE connections otherwise stalls the event loop for 100 ms and more now and then."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


def _uvicorn_server_class() -> type:
    import uvicorn

    class PoolServer(uvicorn.Server):
        """uvicorn re-raises SIGTERM after shutting down, which would kill the process before
        the pool stops its embedded servers; here the signal only asks the server to exit."""

        @contextmanager
        def capture_signals(self) -> Iterator[None]:
            handled = (signal.SIGINT, signal.SIGTERM)
            previous = {signum: signal.signal(signum, self.handle_exit) for signum in handled}
            try:
                yield
            finally:
                for signum, handler in previous.items():
                    signal.signal(signum, handler)

    return PoolServer


def _wait_for_signal() -> None:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass


@config_app.command("show")
@pool_command
def config_show(config: BootstrapConfig) -> None:
    """Print the effective bootstrap config, where each value came from, secrets masked."""
    rows = config.shown()
    width = max(len(key) for key, _, _ in rows)
    for key, value, source in rows:
        typer.echo(f"{key:<{width}} = {value}    ({source})")


@settings_app.command("list")
@pool_command
def settings_list(
    config: BootstrapConfig,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document.")] = False,
) -> None:
    """Every runtime flag with its current value."""
    with opened(config) as pool:
        states = pool.settings.current()
    if as_json:
        typer.echo(
            json.dumps(
                [
                    {
                        "key": s.spec.key,
                        "value": s.value,
                        "default": s.spec.default,
                        "type": s.spec.type.value,
                        "scope": s.spec.scope.value,
                        "page": s.spec.page.value,
                        "description": s.spec.description,
                    }
                    for s in states
                ],
                indent=2,
            )
        )
        return
    width = max(len(s.spec.key) for s in states)
    for s in states:
        marker = " " if s.is_default else "*"
        typer.echo(
            f"{marker} {s.spec.key:<{width}}  {json.dumps(s.value):<12} "
            f"[{s.spec.scope.value}] {s.spec.description}"
        )


@settings_app.command("set")
@pool_command
def settings_set(
    config: BootstrapConfig,
    key: Annotated[str, typer.Argument(help="Flag name, e.g. pool.debug.")],
    value: Annotated[str, typer.Argument(help="New value (true/false, a number, a,b,c ...).")],
    reason: Annotated[str, typer.Option(help="Why: recorded in the audit trail.")],
) -> None:
    """Change one runtime flag (recorded as an event with you as the actor)."""
    with opened(config) as pool:
        context = CommandContext(actor=cli_actor(), reason=reason)
        state = pool.settings.set_flag_from_text(key, value, context)
    typer.echo(f"{state.spec.key} = {json.dumps(state.value)}")


def _audit_line(entry: AuditEntry) -> str:
    when = entry.occurred_at.strftime("%Y-%m-%d %H:%M:%S")
    reason = f"  “{entry.reason}”" if entry.reason else ""
    return (
        f"{entry.position:>7} {when} {entry.actor:<24} {entry.aggregate_type}."
        f"{entry.event_type}{reason}"
    )


@audit_app.command("tail")
@pool_command
def audit_tail(
    config: BootstrapConfig,
    lines: Annotated[int, typer.Option("-n", "--lines", min=1, max=10000)] = 20,
    follow: Annotated[
        bool, typer.Option("-f", "--follow", help="Keep printing new events.")
    ] = False,
    actor: Annotated[str | None, typer.Option(help="Only this actor.")] = None,
) -> None:
    """The latest events of the audit trail, oldest first."""
    with opened(config) as pool:
        runner = pool.runner("audit")
        runner.catch_up()
        with pool.database.connection() as conn:
            entries = query_audit(conn, limit=lines, actor=actor)
        for entry in reversed(entries):
            typer.echo(_audit_line(entry))
        last = entries[0].position if entries else 0
        while follow:
            time.sleep(1.0)
            runner.catch_up()
            with pool.database.connection() as conn:
                fresh = query_audit(conn, after=last, limit=1000, actor=actor, newest_first=False)
            for entry in fresh:
                typer.echo(_audit_line(entry))
                last = entry.position


@audit_app.command("export")
@pool_command
def audit_export(
    config: BootstrapConfig,
    output_format: Annotated[str, typer.Option("--format", help="Only jsonl for now.")] = "jsonl",
    output: Annotated[Path | None, typer.Option(help="File to write [default: stdout].")] = None,
) -> None:
    """The whole audit trail, one JSON object per line."""
    if output_format != "jsonl":
        raise fail(f"unknown format {output_format!r}; supported: jsonl", 2)
    with opened(config) as pool:
        pool.runner("audit").catch_up()
        handle = output.open("w", encoding="utf-8") if output else sys.stdout
        try:
            last = 0
            while True:
                with pool.database.connection() as conn:
                    page = query_audit(conn, after=last, limit=1000, newest_first=False)
                for entry in page:
                    handle.write(json.dumps(entry.as_json(), ensure_ascii=False) + "\n")
                if len(page) < 1000:
                    break
                last = page[-1].position
        finally:
            if output:
                handle.close()


@audit_app.command("replay")
@pool_command
def audit_replay(config: BootstrapConfig) -> None:
    """Rebuild every read model from the event store and compare it with what it was."""
    from infrastructure.verification import table_checksum

    differences = 0
    with opened(config) as pool:
        for runner in pool.runners.values():
            if not runner.model.tables:
                continue
            runner.catch_up()
            with pool.database.connection() as conn:
                before = {t: table_checksum(conn, t) for t in runner.model.tables}
            position = runner.rebuild()
            with pool.database.connection() as conn:
                changed = [t for t in runner.model.tables if table_checksum(conn, t) != before[t]]
            differences += len(changed)
            state = f"differs in {', '.join(changed)}" if changed else "identical"
            typer.echo(f"{runner.name}: rebuilt up to event {position}, {state}")
    if differences:
        raise fail(f"{differences} read model table(s) differed from a full replay")


@audit_app.command("verify")
@pool_command
def audit_verify(config: BootstrapConfig) -> None:
    """Re-check the hash chains of this pool's log and of every peer's accepted events, and
    the signature of every accepted batch."""
    from rich.progress import Progress

    from infrastructure.verification import verify_pool

    with opened(config) as pool, Progress(transient=True) as bar:
        task = bar.add_task("verifying", total=None)
        checked, problems = verify_pool(pool, tick=lambda: bar.advance(task))
    for problem in problems:
        typer.echo(f"problem: {problem}", err=True)
    if problems:
        raise fail(f"{len(problems)} problem(s) in {checked} items checked")
    typer.echo(f"verified {checked} items: chains and signatures intact")


@models_app.command("upload")
@pool_command
def models_upload(
    config: BootstrapConfig,
    file: Annotated[Path, typer.Argument(help="A GGUF model file.")],
    name: Annotated[str | None, typer.Option(help="Model name [default: from the file].")] = None,
    tag: Annotated[str, typer.Option(help="Model tag.")] = "latest",
    reason: Annotated[str, typer.Option(help="Why: recorded in the audit trail.")] = "uploaded",
) -> None:
    """Add a GGUF file to the catalog (with a progress bar)."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    if not file.is_file():
        raise fail(f"{file}: no such file")
    with (
        opened(config) as pool,
        Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            transient=True,
        ) as bar,
    ):
        task = bar.add_task(file.name, total=file.stat().st_size)
        blob = pool.blobs.add_file(file, progress=lambda n: bar.advance(task, n))
        model, created = pool.catalog.add_uploaded(
            blob,
            name or file.stem.lower().replace(" ", "-")[:64],
            tag,
            None,
            "",
            CommandContext(actor=cli_actor(), reason=reason),
        )
    state = "added" if created else "already in the catalog"
    typer.echo(
        f"{model.reference} {state}: {blob.digest} ({blob.size} bytes, "
        f"{blob.metadata.get('architecture')}, {blob.metadata.get('parameter_count')} "
        "parameters)"
    )


@models_app.command("list")
@pool_command
def models_list(config: BootstrapConfig) -> None:
    """The catalog: name, size, capabilities, where deployed."""
    from projections.catalog import list_deployments, list_models

    with opened(config) as pool:
        pool.runner("catalog").catch_up()
        with pool.database.connection() as conn:
            rows = list_models(conn)
            deployments = list_deployments(conn)
    if not rows:
        typer.echo("the catalog is empty: add a model with `archipel models upload FILE`")
        return
    for row in rows:
        placed = [d for d in deployments if d["model_id"] == row["id"]]
        deployed = sum(1 for d in placed if d["state"] == "deployed")
        typer.echo(
            f"{row['name']}:{row['tag']:<12} {row['size'] / 1e6:>10.1f} MB  "
            f"{','.join(row['capabilities']):<16} deployed on {deployed}/{len(placed)}"
        )


@app.command("worker-sim")
def worker_sim(
    host: Annotated[str, typer.Option(help="Listen address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="First worker's port.")] = 11434,
    count: Annotated[int, typer.Option(min=1, max=5000, help="Workers, on consecutive ports.")] = 1,
    tokens_per_second: Annotated[float, typer.Option(min=0, help="Generation speed.")] = 40.0,
    first_token_ms: Annotated[
        float, typer.Option(min=0, help="Latency to the first token.")
    ] = 120.0,
    failure_rate: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of requests answered with a 500.")
    ] = 0.0,
    mode: Annotated[
        str, typer.Option(help="normal, slow, hung or failing (every request answers 500).")
    ] = "normal",
    vary_speed: Annotated[bool, typer.Option(help="Spread speeds from 0.5x to 2x.")] = False,
    models: Annotated[
        str | None, typer.Option(help="Installed models (comma-separated) instead of defaults.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the simulated failures.")] = 0,
) -> None:
    """Serve simulated Ollama workers: a real HTTP server for tests, demos and load tests."""
    import asyncio

    from infrastructure.worker_sim import (
        DEFAULT_MODELS,
        MODES,
        PULLABLE,
        SimModel,
        SimOptions,
        WorkerSim,
        model_name,
        serve_workers,
    )

    if mode not in MODES:
        raise fail(f"--mode must be one of {', '.join(MODES)}, got {mode!r}", 2)
    if port + count - 1 > 65535:
        raise fail(f"--port {port} with --count {count} goes past port 65535", 2)
    installed: tuple[SimModel, ...] = DEFAULT_MODELS
    if models:
        known = {m.name: m for m in PULLABLE}
        wanted = [model_name(name.strip()) for name in models.split(",") if name.strip()]
        unknown = [name for name in wanted if name not in known]
        if unknown:
            raise fail(f"unknown models {', '.join(unknown)}; known: {', '.join(known)}", 2)
        installed = tuple(known[name] for name in wanted)
    options = SimOptions(
        tokens_per_second=tokens_per_second,
        first_token_ms=first_token_ms,
        failure_rate=failure_rate,
        mode=mode,
        seed=seed,
    )
    sim = WorkerSim(host, port, count, options, vary_speed=vary_speed, models=installed)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        serving = asyncio.create_task(serve_workers(sim, stop))
        await asyncio.sleep(0.2)
        if serving.done():
            serving.result()  # a port in use: raise it here
        last = f" ... http://{host}:{port + count - 1}" if count > 1 else ""
        typer.echo(f"worker-sim: {count} Ollama worker(s) on http://{host}:{port}{last}")
        sys.stdout.flush()
        await serving

    try:
        asyncio.run(run())
    except OSError as error:
        raise fail(f"cannot listen: {error.strerror or error}") from None


@app.command()
def demo(
    host: Annotated[
        str, typer.Option(help="Listen address of the pool and workers.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="The pool's port.")] = 8080,
    sim_port: Annotated[int, typer.Option(min=1, max=65000, help="First worker's port.")] = 11500,
    workers: Annotated[int, typer.Option(min=1, max=500, help="Simulated workers.")] = 12,
) -> None:
    """A throwaway pool with a dozen simulated workers: prints the URL and the login."""
    from web.demo import main_demo

    main_demo(str(Path(sys.argv[0]).resolve()), host, port, sim_port, workers)


def main() -> None:
    # pgserver asks platformdirs for a runtime dir it does not need on our socket layout.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    app()


if __name__ == "__main__":
    main()
