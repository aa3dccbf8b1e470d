"""PostgreSQL connections for read models and our own tables (the event store has its own pool)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool


class DatabaseError(Exception):
    pass


def connection_params(url: str) -> dict[str, Any]:
    """Host, port, dbname, user and password of a postgresql:// URL."""
    return conninfo_to_dict(url)


class Database:
    # Projection runners hold one connection each while they apply a batch; web threads,
    # actors and the scheduler need theirs at the same time.
    def __init__(self, url: str, *, max_size: int = 30) -> None:
        self.url = url
        self.pool: ConnectionPool[psycopg.Connection[dict[str, Any]]] = ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            kwargs={"row_factory": dict_row, "autocommit": False},
            open=False,
            name="archipel",
        )

    def open(self) -> None:
        try:
            self.pool.open(wait=True, timeout=30)
        except Exception as error:
            raise DatabaseError(f"cannot connect to PostgreSQL: {error}") from error

    def close(self) -> None:
        self.pool.close()

    def connection(self) -> Any:
        """A pooled connection as a context manager; commits on success, rolls back on error."""
        return self.pool.connection()

    @contextmanager
    def autocommit(self) -> Iterator[Any]:
        """A pooled connection whose statements each commit on their own: a lone read costs one
        round trip instead of three (BEGIN, the query, COMMIT)."""
        with self.pool.connection() as conn:
            conn.autocommit = True
            try:
                yield conn
            finally:
                if not conn.closed:
                    conn.autocommit = False

    def ensure_vector(self) -> None:
        with self.connection() as conn:
            available = conn.execute(
                "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'"
            ).fetchone()
            if available is None:
                raise DatabaseError(
                    "the PostgreSQL server has no `vector` extension (pgvector): install "
                    "pgvector on that server (e.g. the postgresql-16-pgvector package) or leave "
                    "database_url unset to use the embedded PostgreSQL, which has it"
                )
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")

    @contextmanager
    def startup_lock(self) -> Iterator[None]:
        """Serialise schema changes of processes starting at once (CREATE ... IF NOT EXISTS
        still fails with "tuple concurrently updated" when two sessions run it together)."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("SELECT pg_advisory_lock(hashtext('archipel.startup'))")
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(hashtext('archipel.startup'))")

    def apply_schema(self, statements: Iterable[str]) -> None:
        """Create our tables; every statement is idempotent (IF NOT EXISTS)."""
        with self.connection() as conn:
            for statement in statements:
                conn.execute(statement)

    def pool_id(self) -> str:
        """This pool's stable id, made at first start and kept in the database."""
        with self.connection() as conn:
            conn.execute(
                "INSERT INTO pool_identity (singleton, pool_id) VALUES (true, %s) "
                "ON CONFLICT (singleton) DO NOTHING",
                (str(uuid.uuid4()),),
            )
            row = conn.execute("SELECT pool_id FROM pool_identity").fetchone()
            assert row is not None
            return str(row["pool_id"])


CORE_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS pool_identity (
        singleton boolean PRIMARY KEY CHECK (singleton),
        pool_id text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now())""",
)
