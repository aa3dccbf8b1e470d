"""Several processes starting on one database at once (serve, a worker, a CLI command)."""

from __future__ import annotations

import threading
from pathlib import Path

from infrastructure.bootstrap import Pool, open_pool
from infrastructure.config import BootstrapConfig


def test_concurrent_starts_on_a_fresh_database_all_succeed(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    config = BootstrapConfig(data_dir=tmp_path, database_url=database_url, redis_url=redis_url)
    pools: list[Pool] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            pools.append(open_pool(config))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert errors == []
        assert len({pool.pool_id for pool in pools}) == 1  # one identity, made once
    finally:
        for pool in pools:
            pool.close()


def test_the_master_key_is_private(pool: Pool) -> None:
    key = pool.config.data_dir / "secrets" / "master.key"
    assert key.stat().st_mode & 0o777 == 0o600
    assert key.parent.stat().st_mode & 0o777 == 0o700
