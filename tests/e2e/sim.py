"""`archipel worker-sim` processes for tests: real Ollama-protocol servers on loopback ports."""

from __future__ import annotations

import random
import socket
import subprocess
import time
from dataclasses import dataclass, field

import httpx

from tests.e2e.conftest import ARCHIPEL


def free_ports(count: int) -> int:
    """The first of `count` consecutive free ports, below the ephemeral range (32768+), where
    outgoing connections of the tests themselves would otherwise take ports at random."""
    rng = random.Random()
    for _ in range(200):
        first = rng.randrange(20000, 32000 - count)
        if all(_free(first + i) for i in range(count)):
            return first
    raise RuntimeError("no run of free ports")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        # As the servers do: a port only in TIME_WAIT can be listened on again.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@dataclass
class SimProcess:
    count: int = 1
    options: list[str] = field(default_factory=list)
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        if not self.port:
            self.port = free_ports(self.count)

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{self.port + i}" for i in range(self.count)]

    def start(self) -> SimProcess:
        self.process = subprocess.Popen(
            [
                ARCHIPEL,
                "worker-sim",
                "--port",
                str(self.port),
                "--count",
                str(self.count),
                *self.options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                # /api/tags, not /api/version: a hung worker answers nothing, so probe the port.
                with socket.create_connection(("127.0.0.1", self.port + self.count - 1), 0.5):
                    return self
            except OSError:
                assert self.process.poll() is None, "worker-sim exited"
                time.sleep(0.1)
        raise AssertionError("worker-sim did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)

    def set_mode(self, index: int, mode: str) -> None:
        httpx.post(f"{self.urls[index]}/_sim/mode", json={"mode": mode}, timeout=5)
