"""Real `archipel` processes on free loopback ports, each with a temporary data dir."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest

from tests.e2e.admin_client import AdminClient

ARCHIPEL = str(Path(sys.executable).parent / "archipel")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def archipel(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ARCHIPEL, *args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
    )


@dataclass
class PoolProcess:
    data_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    extra_args: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 90) -> None:
        self.log_path = self.data_dir.parent / f"serve-{self.port}-{time.monotonic_ns()}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    ARCHIPEL,
                    "serve",
                    "--data-dir",
                    str(self.data_dir),
                    "--port",
                    str(self.port),
                    *self.extra_args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"/readyz not 200 within {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no cleanup at all
        self.process.wait(timeout=10)

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                raise
        return int(self.process.returncode)

    def database_url(self) -> str:
        """The embedded PostgreSQL of this pool (tests use it to age sessions, etc.)."""
        return f"postgresql://postgres:@/archipel?host={self.data_dir / 'postgres'}"

    def redis_url(self) -> str:
        return f"unix://{self.data_dir / 'redis' / 'redis.sock'}"

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return archipel(*args, "--data-dir", str(self.data_dir))


@pytest.fixture
def workdir() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="archipel-e2e-", dir="/tmp"))  # short socket paths
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def pool_process(workdir: Path) -> Iterator[PoolProcess]:
    pool = PoolProcess(workdir / "var")
    yield pool
    shut_down(pool)


def shut_down(pool: PoolProcess) -> None:
    if pool.process is not None and pool.process.poll() is None:
        pool.stop()
    # A test that failed after a SIGKILL may leave embedded servers behind: end them.
    for leftover in embedded_servers(pool.data_dir):
        leftover.terminate()


@pytest.fixture(scope="module")
def onboarded() -> Iterator[tuple[PoolProcess, AdminClient]]:
    """One pool per test module, onboarded, with its first admin logged in."""
    base = Path(tempfile.mkdtemp(prefix="archipel-e2e-", dir="/tmp"))
    pool = PoolProcess(base / "var")
    pool.start()
    admin = AdminClient(pool.url)
    try:
        admin.onboard()
        yield pool, admin
    finally:
        admin.close()
        shut_down(pool)
        shutil.rmtree(base, ignore_errors=True)


def embedded_servers(data_dir: Path) -> list[psutil.Process]:
    """Embedded PostgreSQL and Redis processes serving `data_dir`."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if str(data_dir) in cmdline and ("postgres" in cmdline or "redis-server" in cmdline):
            found.append(process)
    return found
