"""Scale-out: a web process without workers, and `archipel worker` as a separate process."""

from __future__ import annotations

import signal
import subprocess
import time

import httpx

from tests.e2e.conftest import ARCHIPEL, PoolProcess


def test_a_separate_worker_process_runs_the_background_work(pool_process: PoolProcess) -> None:
    # serve without the workers role: background messages wait in Redis for a worker.
    pool_process.extra_args = ["--roles", "web,projections,scheduler"]
    pool_process.start()
    changed = pool_process.cli("settings", "set", "pool.debug", "true", "--reason", "trace it")
    assert changed.returncode == 0, changed.stderr

    def announced() -> bool:
        export = pool_process.cli("audit", "export")
        return '"event_type": "Raised"' in export.stdout

    time.sleep(2.0)
    assert not announced()  # no worker yet

    worker = subprocess.Popen(
        [ARCHIPEL, "worker", "--data-dir", str(pool_process.data_dir), "--threads", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not announced():
            assert worker.poll() is None, worker.stdout.read() if worker.stdout else ""
            assert time.monotonic() < deadline, "the worker process never ran the job"
            time.sleep(0.5)
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
    assert httpx.get(f"{pool_process.url}/readyz").status_code == 200
