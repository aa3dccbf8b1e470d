"""A real `archipel serve` in a throwaway data dir, shared by the benchmarks that need one."""

from __future__ import annotations

import contextlib
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

ARCHIPEL = str(Path(sys.executable).parent / "archipel")


def raise_fd_limit(needed: int) -> int:
    """Soft RLIMIT_NOFILE up to the hard limit (a bench holds a connection per client or worker);
    exits with one line when even that is below `needed`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        soft = hard if hard != resource.RLIM_INFINITY else max(soft, needed)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if soft != resource.RLIM_INFINITY and soft < needed:
        raise SystemExit(f"error: need about {needed} file descriptors, the limit is {soft}")
    return int(soft)


@contextlib.contextmanager
def log_tail_on_failure(what: str, tail: Callable[[], str]) -> Iterator[None]:
    """On any failure inside, the last lines of `what`'s log go to stderr first."""
    try:
        yield
    except BaseException:
        lines = tail()
        if lines:
            print(f"--- last lines of the {what} log ---\n{lines}", file=sys.stderr)
        raise


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class ServeProcess:
    """`archipel serve` with its own data dir; the embedded servers it starts are noted by pid
    (PostgreSQL's postmaster.pid, Redis as a child of serve) so only they are ended."""

    base: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    children: list[psutil.Process] = field(default_factory=list)
    # "one": `serve` runs every role (as `make run` does). "split": `serve --roles web` and an
    # `archipel worker` process for projections, background workers and the scheduler (the
    # layout of DESIGN.md section 1: web processes and worker processes).
    layout: str = "one"
    worker: subprocess.Popen[bytes] | None = None

    @property
    def data_dir(self) -> Path:
        return self.base / "var"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.base / "serve.log"

    @property
    def database_url(self) -> str:
        return f"postgresql://postgres:@/archipel?host={self.data_dir / 'postgres'}"

    @property
    def redis_url(self) -> str:
        return f"unix://{self.redis_socket}"

    @property
    def redis_socket(self) -> Path:
        return self.data_dir / "redis" / "redis.sock"

    def start(self, timeout: float = 120) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        command = [ARCHIPEL, "serve", "--data-dir", str(self.data_dir), "--port", str(self.port)]
        if self.layout == "split":
            command += ["--roles", "web"]
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"archipel serve exited early:\n{self.log_tail()}")
            if self.layout == "split" and self.worker is None and self._database_up():
                self._start_worker()
            if self.worker is not None and self.worker.poll() is not None:
                raise RuntimeError(f"archipel worker exited early:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    self.children = self.embedded()
                    return
            time.sleep(0.2)
        raise RuntimeError(f"/readyz not 200 within {timeout:.0f} s:\n{self.log_tail()}")

    def _database_up(self) -> bool:
        return (self.data_dir / "postgres" / "postmaster.pid").exists() and (
            self.redis_socket.exists()
        )

    def _start_worker(self) -> None:
        with (self.base / "worker.log").open("wb") as log:
            self.worker = subprocess.Popen(
                [
                    ARCHIPEL,
                    "worker",
                    "--data-dir",
                    str(self.data_dir),
                    "--roles",
                    "projections,workers,scheduler",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def server(self) -> psutil.Process:
        assert self.process is not None
        return psutil.Process(self.process.pid)

    def embedded(self) -> list[psutil.Process]:
        """The server's children (Redis) and its PostgreSQL, which pg_ctl started detached."""
        found: list[psutil.Process] = []
        with contextlib.suppress(psutil.Error):
            found = self.server().children(recursive=True)
        with contextlib.suppress(OSError, ValueError, psutil.Error):
            pid_file = self.data_dir / "postgres" / "postmaster.pid"
            postmaster = psutil.Process(int(pid_file.read_text().split()[0]))
            found += [postmaster, *postmaster.children(recursive=True)]
        return found

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is None:
            return
        self.children = self.embedded() or self.children
        if self.worker is not None:
            _terminate(self.worker)
        _terminate(self.process)
        # serve stops its embedded servers on a clean exit; after a crash, end those it started.
        for child in self.children:
            with contextlib.suppress(psutil.Error):
                if child.is_running():  # also checks the pid was not reused
                    child.terminate()


def _terminate(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a clean stop), then SIGKILL after a minute."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@contextlib.contextmanager
def running(base: Path, remove: bool = False, layout: str = "one") -> Iterator[ServeProcess]:
    """A started pool, stopped at the end (and its directory removed if asked); the tail of
    its log goes to stderr when something fails."""
    pool = ServeProcess(base, layout=layout)
    try:
        with log_tail_on_failure("server", pool.log_tail):
            pool.start()
            yield pool
    finally:
        pool.stop()
        if remove:
            shutil.rmtree(base, ignore_errors=True)
