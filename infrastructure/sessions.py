"""Admin sessions, stored server-side by the SHA-256 of their id, and login throttling."""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import secrets

import redis

from infrastructure.database import Database

SESSIONS_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS admin_sessions (
        id_hash text PRIMARY KEY,
        admin_id text NOT NULL,
        client text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        last_seen_at timestamptz NOT NULL DEFAULT now())""",
    "CREATE INDEX IF NOT EXISTS admin_sessions_admin ON admin_sessions (admin_id)",
)
SESSIONS_CHANNEL = "archipel:sessions"
# A session's last-seen time is written at most this often (not on every request).
TOUCH_EVERY_SECONDS = 30


def session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("ascii", "replace")).hexdigest()


class PostgresSessionStore:
    def __init__(self, database: Database, redis_client: redis.Redis | None) -> None:
        self._db = database
        self._redis = redis_client

    def open(self, admin_id: str, client: str) -> str:
        session_id = secrets.token_urlsafe(32)  # 256 random bits
        with self._db.connection() as conn:
            conn.execute(
                "INSERT INTO admin_sessions (id_hash, admin_id, client) VALUES (%s, %s, %s)",
                (session_hash(session_id), admin_id, client[:200]),
            )
        return session_id

    def find(self, session_id: str, idle_seconds: int, absolute_seconds: int) -> str | None:
        # A read on most requests; a write (and its WAL flush) only when a touch is due.
        params = {
            "hash": session_hash(session_id),
            "idle": idle_seconds,
            "absolute": absolute_seconds,
            "touch": TOUCH_EVERY_SECONDS,
        }
        with self._db.autocommit() as conn:  # every request passes here
            row = conn.execute(
                """SELECT admin_id,
                          last_seen_at < now() - make_interval(secs => %(touch)s) AS stale
                   FROM admin_sessions
                   WHERE id_hash = %(hash)s
                     AND last_seen_at > now() - make_interval(secs => %(idle)s)
                     AND created_at > now() - make_interval(secs => %(absolute)s)""",
                params,
            ).fetchone()
            if row is not None and row["stale"]:
                conn.execute(
                    "UPDATE admin_sessions SET last_seen_at = now() WHERE id_hash = %(hash)s",
                    params,
                )
        return str(row["admin_id"]) if row else None

    def close(self, session_id: str) -> None:
        hashed = session_hash(session_id)
        with self._db.connection() as conn:
            conn.execute("DELETE FROM admin_sessions WHERE id_hash = %s", (hashed,))
        self._announce({"sessions": [hashed]})

    def close_all(self, admin_id: str) -> int:
        with self._db.connection() as conn:
            rows = conn.execute(
                "DELETE FROM admin_sessions WHERE admin_id = %s RETURNING id_hash", (admin_id,)
            ).fetchall()
        self._announce({"admin_id": admin_id, "sessions": [r["id_hash"] for r in rows]})
        return len(rows)

    def expire_stale(self, absolute_seconds: int) -> int:
        with self._db.connection() as conn:
            deleted = conn.execute(
                "DELETE FROM admin_sessions WHERE created_at < now() - make_interval(secs => %s)",
                (absolute_seconds,),
            )
            return int(deleted.rowcount)

    def _announce(self, ended: dict[str, object]) -> None:
        # Live streams of these sessions close when this reaches their web process.
        # (If Redis is away, streams still end at their next session check.)
        if self._redis is not None:
            with contextlib.suppress(redis.RedisError):
                self._redis.publish(SESSIONS_CHANNEL, json.dumps(ended))


class RedisLoginThrottle:
    """Failed-login counters per key (account digest, client address), shared by web processes.

    From the threshold on, each failure locks the key for twice as long as the previous one
    (30 s, 60 s, ... up to 15 minutes); counters forget after 15 minutes without failure.
    """

    WINDOW_SECONDS = 900
    FIRST_LOCK_SECONDS = 30

    def __init__(self, client: redis.Redis) -> None:
        self._redis = client

    def retry_after(self, keys: list[str], threshold: int) -> int:
        longest = 0
        for key in keys:
            ttl = int(self._redis.pttl(f"archipel:login:lock:{key}"))
            if ttl > 0:
                longest = max(longest, math.ceil(ttl / 1000))
        return longest

    def failed(self, keys: list[str], threshold: int = 0) -> None:
        for key in keys:
            count = int(self._redis.incr(f"archipel:login:fail:{key}"))
            self._redis.expire(f"archipel:login:fail:{key}", self.WINDOW_SECONDS)
            if threshold and count >= threshold:
                lock = min(self.FIRST_LOCK_SECONDS * 2 ** (count - threshold), self.WINDOW_SECONDS)
                self._redis.set(f"archipel:login:lock:{key}", "1", ex=int(lock))

    def succeeded(self, keys: list[str]) -> None:
        # Only the account's counter resets: a shared address keeps its history.
        for key in keys:
            if key.startswith("account:"):
                self._redis.delete(f"archipel:login:fail:{key}", f"archipel:login:lock:{key}")
