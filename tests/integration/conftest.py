"""Real embedded PostgreSQL and Redis, started once per test session; a fresh database each test."""

from __future__ import annotations

import itertools
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis
from psycopg.conninfo import conninfo_to_dict

from infrastructure.bootstrap import Pool, open_pool
from infrastructure.config import BootstrapConfig
from infrastructure.embedded import EmbeddedPostgres, EmbeddedRedis


@dataclass(frozen=True)
class Servers:
    postgres_url: str
    redis_socket: str

    def database_url(self, name: str) -> str:
        host = conninfo_to_dict(self.postgres_url)["host"]
        return f"postgresql://postgres:@/{name}?host={host}"


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    # A short path: Unix socket paths are limited to about 100 bytes.
    base = Path(tempfile.mkdtemp(prefix="archipel-it-", dir="/tmp"))
    postgres = EmbeddedPostgres(base)
    redis_server = EmbeddedRedis(base)
    try:
        url = postgres.start()
        redis_server.start()
        yield Servers(url, str(redis_server.socket))
    finally:
        redis_server.stop()
        postgres.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def database_url(servers: Servers) -> Iterator[str]:
    name = f"test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(servers.postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield servers.database_url(name)
    with psycopg.connect(servers.postgres_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


_redis_databases = itertools.cycle(range(1, 16))


@pytest.fixture
def redis_url(servers: Servers) -> str:
    # Each test gets a logical database of its own, emptied first: queues never cross tests.
    db = next(_redis_databases)
    redis.Redis(unix_socket_path=servers.redis_socket, db=db).flushdb()
    return f"unix://{servers.redis_socket}?db={db}"


@pytest.fixture
def config(tmp_path: Path, database_url: str, redis_url: str) -> BootstrapConfig:
    return BootstrapConfig(data_dir=tmp_path, database_url=database_url, redis_url=redis_url)


@pytest.fixture
def pool(config: BootstrapConfig) -> Iterator[Pool]:
    opened = open_pool(config)
    yield opened
    opened.close()
