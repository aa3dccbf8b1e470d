"""`archipel demo`: a pool and a dozen simulated workers, set up, with a login printed."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

from tests.e2e.admin_client import AdminClient
from tests.e2e.conftest import ARCHIPEL, free_port
from tests.e2e.sim import free_ports


def test_demo_sets_up_a_pool_with_workers_and_cleans_up() -> None:
    port, sim_port = free_port(), free_ports(12)
    demo = subprocess.Popen(
        [ARCHIPEL, "demo", "--port", str(port), "--sim-port", str(sim_port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    lines: list[str] = []
    try:
        assert demo.stdout is not None
        deadline = time.monotonic() + 120
        while not any("log in as" in line for line in lines):
            assert time.monotonic() < deadline and demo.poll() is None, "".join(lines)
            lines.append(demo.stdout.readline())
        output = "".join(lines)
        login = re.search(r"log in as (\S+) with password (\S+)", output)
        data_dir = re.search(r"data in (\S+), deleted", output)
        assert login is not None and data_dir is not None

        admin = AdminClient(f"http://127.0.0.1:{port}")
        assert admin.login(login.group(1), login.group(2)).status_code == 200
        listed = admin.get("/api/workers").json()
        assert listed["counts"]["total"] == 12
        assert all("demo" in worker["labels"] for worker in listed["items"])
    finally:
        demo.send_signal(signal.SIGTERM)
        assert demo.wait(timeout=60) == 0
    assert not Path(data_dir.group(1)).exists()
