"""Secrets at rest: the pool's master key and per-person data keys (crypto-shredding)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from pathlib import Path

import nacl.exceptions
import nacl.secret
import nacl.utils

from domain.personal import Sealed
from infrastructure.database import Database

PERSON_KEYS_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS person_keys (
        subject text PRIMARY KEY,
        wrapped_key bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now())""",
)


def load_or_create_master_key(data_dir: Path) -> bytes:
    """The key that encrypts every other secret of this pool; file mode 0600 in the data dir."""
    path = data_dir / "secrets" / "master.key"
    if path.exists():
        key = path.read_bytes()
        if len(key) != nacl.secret.SecretBox.KEY_SIZE:
            raise ValueError(f"{path} is not a valid master key ({len(key)} bytes)")
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    key = nacl.utils.random(nacl.secret.SecretBox.KEY_SIZE)
    # O_EXCL: if two processes race, one wins and the other reads the winner's key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return load_or_create_master_key(data_dir)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key)
    return key


class PostgresPersonalDataVault:
    """Per-person data keys, wrapped with the master key, in the `person_keys` table."""

    def __init__(self, database: Database, master_key: bytes) -> None:
        self._db = database
        self._master = nacl.secret.SecretBox(master_key)

    def seal(self, subject: str, text: str) -> Sealed:
        key = self._key(subject, create=True)
        assert key is not None
        box = nacl.secret.SecretBox(key).encrypt(text.encode("utf-8"))
        return Sealed(subject=subject, box=base64.b64encode(bytes(box)).decode("ascii"))

    def unseal(self, sealed: Sealed) -> str | None:
        key = self._key(sealed.subject, create=False)
        if key is None:
            return None
        try:
            clear = nacl.secret.SecretBox(key).decrypt(base64.b64decode(sealed.box))
        except nacl.exceptions.CryptoError:
            return None
        return clear.decode("utf-8")

    def forget(self, subject: str) -> bool:
        with self._db.connection() as conn:
            deleted = conn.execute("DELETE FROM person_keys WHERE subject = %s", (subject,))
            return bool(deleted.rowcount > 0)

    def _key(self, subject: str, *, create: bool) -> bytes | None:
        with self._db.connection() as conn:
            row = conn.execute(
                "SELECT wrapped_key FROM person_keys WHERE subject = %s", (subject,)
            ).fetchone()
            if row is None and create:
                fresh = self._master.encrypt(nacl.utils.random(nacl.secret.SecretBox.KEY_SIZE))
                row = conn.execute(
                    "INSERT INTO person_keys (subject, wrapped_key) VALUES (%s, %s) "
                    "ON CONFLICT (subject) DO UPDATE SET subject = EXCLUDED.subject "
                    "RETURNING wrapped_key",
                    (subject, bytes(fresh)),
                ).fetchone()
            if row is None:
                return None
            return bytes(self._master.decrypt(bytes(row["wrapped_key"])))


def derive_key(master_key: bytes, purpose: str) -> bytes:
    """A sub-key for one purpose, so that no two uses share a key."""
    return hmac.new(master_key, f"archipel/{purpose}/v1".encode(), hashlib.sha256).digest()


class KeyedDigests:
    """HMAC-SHA256 digests: e-mail lookups without storing e-mail addresses in clear."""

    def __init__(self, master_key: bytes) -> None:
        self._email_key = derive_key(master_key, "email-digest")

    def email(self, email: str) -> str:
        return hmac.new(self._email_key, email.encode("utf-8"), hashlib.sha256).hexdigest()


class MasterSecretBox:
    """Seals pool secrets (the SMTP password) with a sub-key of the master key."""

    def __init__(self, master_key: bytes) -> None:
        self._box = nacl.secret.SecretBox(derive_key(master_key, "pool-secrets"))

    def seal(self, text: str) -> str:
        return base64.b64encode(bytes(self._box.encrypt(text.encode("utf-8")))).decode("ascii")

    def open(self, sealed: str) -> str:
        return bytes(self._box.decrypt(base64.b64decode(sealed))).decode("utf-8")
