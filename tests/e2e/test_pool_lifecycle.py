"""A pool as its operator runs it: start, change a flag from the CLI, crash, restart."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import httpx

from tests.e2e.conftest import ARCHIPEL, PoolProcess, archipel, embedded_servers


def test_state_survives_kill_9_and_restart(pool_process: PoolProcess) -> None:
    # The pool comes up on embedded PostgreSQL and Redis.
    pool_process.start()
    assert httpx.get(f"{pool_process.url}/healthz").json() == {"status": "ok"}

    # An operator changes a flag from the CLI while serve runs on the same data dir.
    result = pool_process.cli(
        "settings", "set", "cluster.failover_mode", "auto", "--reason", "night shift"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == 'cluster.failover_mode = "auto"'

    # serve's projections pick it up (metrics show no lag).
    def metrics() -> str:
        return httpx.get(f"{pool_process.url}/metrics").text

    deadline = time.monotonic() + 20
    while 'archipel_projection_lag_events{view="audit"} 0.0' not in metrics():
        assert time.monotonic() < deadline, metrics()
        time.sleep(0.2)

    # Crash: no cleanup at all.
    pool_process.kill()

    # Restart on the same data dir: the flag and its audit entry are still there.
    pool_process.start()
    listing = pool_process.cli("settings", "list", "--json")
    assert listing.returncode == 0, listing.stderr
    flags = {flag["key"]: flag["value"] for flag in json.loads(listing.stdout)}
    assert flags["cluster.failover_mode"] == "auto"

    tail = pool_process.cli("audit", "tail", "-n", "50")
    assert tail.returncode == 0, tail.stderr
    assert "FlagSet.FlagChanged" in tail.stdout
    assert "“night shift”" in tail.stdout
    assert "cli:" in tail.stdout

    exported = pool_process.cli("audit", "export", "--format", "jsonl")
    entries = [json.loads(line) for line in exported.stdout.splitlines()]
    changed = [e for e in entries if e["event_type"] == "FlagChanged"]
    assert changed[0]["payload"]["new_value"] == "auto"
    assert changed[0]["reason"] == "night shift"
    # The automation announced the change, caused by that very event.
    raised = [e for e in entries if e["event_type"] == "Raised"]
    assert raised and raised[0]["causation_id"] == changed[0]["event_id"]

    # A clean stop (SIGTERM) ends the embedded servers too.
    assert pool_process.stop() == 0
    assert embedded_servers(pool_process.data_dir) == []


def test_cli_errors_are_one_line_and_lose_nothing(pool_process: PoolProcess, workdir: Path) -> None:
    pool_process.start()
    bad_value = pool_process.cli(
        "settings", "set", "cluster.balancer_interval_seconds", "1", "--reason", "faster"
    )
    assert bad_value.returncode == 1
    assert bad_value.stderr.strip() == (
        "error: cluster.balancer_interval_seconds: must be at least 5 seconds, got 1"
    )
    unknown = pool_process.cli("settings", "set", "no.such.flag", "1", "--reason", "x")
    assert unknown.returncode == 1 and len(unknown.stderr.strip().splitlines()) == 1
    no_reason = pool_process.cli("settings", "set", "pool.debug", "true", "--reason", " ")
    assert no_reason.returncode == 1 and "reason is required" in no_reason.stderr

    listing = pool_process.cli("settings", "list", "--json")
    flags = {flag["key"]: flag["value"] for flag in json.loads(listing.stdout)}
    assert flags["cluster.balancer_interval_seconds"] == 60
    assert flags["pool.debug"] is False

    config_file = workdir / "archipel.toml"
    config_file.write_text("portt = 1\n")
    bad_config = archipel("config", "show", "--config", str(config_file))
    assert bad_config.returncode == 2
    assert bad_config.stderr.strip() == (
        f"error: {config_file}: portt: unknown key (known keys: data_dir, database_url, "
        "redis_url, host, port, public_url, roles)"
    )


def test_config_show_prints_sources_with_secrets_masked(workdir: Path) -> None:
    config_file = workdir / "archipel.toml"
    config_file.write_text('database_url = "postgresql://app:hunter2@db.internal/archipel"\n')
    shown = archipel("config", "show", "--config", str(config_file), "--port", "9001")
    assert shown.returncode == 0, shown.stderr
    lines = {line.split("=")[0].strip(): line for line in shown.stdout.splitlines()}
    assert "hunter2" not in shown.stdout
    assert "postgresql://app:***@db.internal/archipel" in lines["database_url"]
    assert lines["database_url"].endswith(f"(file {config_file})")
    assert lines["port"].endswith("(flag)")
    assert lines["host"].endswith("(default)")


def test_every_command_has_help() -> None:
    for command in (
        ["serve"],
        ["worker"],
        ["config", "show"],
        ["settings", "list"],
        ["settings", "set"],
        ["audit", "tail"],
        ["audit", "export"],
        ["audit", "replay"],
    ):
        result = subprocess.run(
            [ARCHIPEL, *command, "--help"], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, (command, result.stderr)
        assert "--data-dir" in result.stdout and "--database-url" in result.stdout, command
