"""`archipel demo`: a pool and a dozen simulated workers of varied speed, ready to explore.

It runs `archipel worker-sim` and `archipel serve` as child processes on a throwaway data dir,
walks the first-boot wizard through the API, registers the workers, and prints where to log in.
Everything stops, and the data dir is deleted, on Ctrl+C.
"""

from __future__ import annotations

import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx

DEMO_EMAIL = "demo@archipel.example"


class DemoError(Exception):
    pass


def _wait_until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise DemoError(f"{what} did not come up within {seconds:.0f} s")


def run_demo(
    archipel: str,
    host: str,
    port: int,
    sim_port: int,
    workers: int,
    say: Callable[[str], None],
) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="archipel-demo-"))
    base = f"http://{host}:{port}"
    children: list[subprocess.Popen[bytes]] = []
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        say(f"starting {workers} simulated workers on ports {sim_port}-{sim_port + workers - 1}")
        children.append(
            subprocess.Popen(
                [
                    archipel,
                    "worker-sim",
                    "--host",
                    host,
                    "--port",
                    str(sim_port),
                    "--count",
                    str(workers),
                    "--vary-speed",
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
        )
        say(f"starting the pool on {base} (data in {data_dir}, deleted at exit)")
        log = (data_dir / "serve.log").open("wb")
        children.append(
            subprocess.Popen(
                [
                    archipel,
                    "serve",
                    "--data-dir",
                    str(data_dir / "var"),
                    "--host",
                    host,
                    "--port",
                    str(port),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
        _wait_until(lambda: httpx.get(f"{base}/readyz").status_code == 200, 90, "the pool")
        password = set_up(base, host, sim_port, workers)
        say("")
        say(f"  Archipel demo: {base}")
        say(f"  log in as {DEMO_EMAIL} with password {password}")
        say(f"  {workers} workers registered; Ctrl+C stops everything")
        while not stop.wait(1.0):
            if any(child.poll() is not None for child in children):
                raise DemoError(f"a demo process stopped; see {data_dir / 'serve.log'}")
    finally:
        for child in children:
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        shutil.rmtree(data_dir, ignore_errors=True)


def set_up(base: str, host: str, sim_port: int, workers: int) -> str:
    """Walk the wizard, then register the simulated workers; returns the admin's password."""
    password = f"archipel-{secrets.token_urlsafe(9)}"  # not containing the e-mail's "demo"
    client = httpx.Client(base_url=base, headers={"Origin": base}, timeout=30)
    token = client.get("/api/auth/csrf").json()["csrf_token"]

    def post(path: str, body: object = None, method: str = "POST") -> httpx.Response:
        response = client.request(method, path, json=body, headers={"X-CSRF-Token": token})
        if response.status_code >= 400:
            raise DemoError(f"{method} {path}: {response.json().get('detail', response.text)}")
        return response

    created = post(
        "/api/onboarding/admin",
        {"email": DEMO_EMAIL, "display_name": "Demo Admin", "password": password},
    )
    token = created.json()["session"]["csrf_token"]
    post("/api/onboarding/pool", {"pool_name": "demo", "site": "Local"})
    post("/api/onboarding/public-url", {"public_url": base})
    post("/api/onboarding/identity")
    post("/api/onboarding/complete")
    post(
        "/api/settings/workers.health_check_interval_seconds",
        {"value": 5, "reason": "demo: quick health checks"},
        method="PUT",
    )
    for index in range(workers):
        post(
            "/api/workers",
            {
                "url": f"http://{host}:{sim_port + index}",
                "name": f"sim-{index + 1:02}",
                "labels": ["demo", "speed=slow" if index < workers // 3 else "speed=fast"],
                "capacity": 4,
                "reason": "demo fleet",
            },
        )
    return password


def main_demo(archipel: str, host: str, port: int, sim_port: int, workers: int) -> None:
    try:
        run_demo(archipel, host, port, sim_port, workers, lambda line: print(line, flush=True))
    except DemoError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
