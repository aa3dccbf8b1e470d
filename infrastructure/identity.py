"""The pool's Ed25519 identity: the private key sealed with the master key, mode 0600."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import nacl.secret
import nacl.signing

KEY_FILE = "pool-identity.key"
KEYRING_FILE = "pool-identity.json"  # key ids, and the old keys with their expiry


class FileIdentityKeys:
    def __init__(self, data_dir: Path, master_key: bytes) -> None:
        self._path = data_dir / "secrets" / KEY_FILE
        self._box = nacl.secret.SecretBox(master_key)

    @property
    def path(self) -> Path:
        return self._path

    def generate(self) -> tuple[str, str]:
        """Make the key pair once; a second call returns the existing public key."""
        if self._path.exists():
            signing = self.signing_key()
        else:
            signing = nacl.signing.SigningKey.generate()
            self._path.parent.mkdir(parents=True, exist_ok=True)
            sealed = self._box.encrypt(bytes(signing))
            fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(bytes(sealed))
        public = base64.b64encode(bytes(signing.verify_key)).decode("ascii")
        return self.current_key_id(), public

    def signing_key(self) -> nacl.signing.SigningKey:
        return nacl.signing.SigningKey(self._box.decrypt(self._path.read_bytes()))

    def _ring(self) -> dict[str, Any]:
        ring = self._path.with_name(KEYRING_FILE)
        if ring.exists():
            return dict(json.loads(ring.read_text()))
        return {"current": 1, "old": []}

    def current_key_id(self) -> str:
        return f"ed25519:{self._ring()['current']}"

    def rotations(self) -> list[dict[str, Any]]:
        """Every rotation announcement, signed by the old and the new key, oldest first."""
        return list(self._ring().get("rotations", []))

    def keep_rotation(self, signed: dict[str, Any]) -> None:
        """Keep an announcement so a peer that missed it can still follow the rotation."""
        ring = self._ring()
        ring.setdefault("rotations", []).append(signed)
        ring_path = self._path.with_name(KEYRING_FILE)
        ring_path.write_text(json.dumps(ring))
        ring_path.chmod(0o600)

    def old_keys(self) -> list[dict[str, Any]]:
        """Earlier keys: {key_id, public_key, valid_until} (peers may still verify with them)."""
        return list(self._ring()["old"])

    def rotate(
        self, old_valid_until: str
    ) -> tuple[nacl.signing.SigningKey, str, nacl.signing.SigningKey, str]:
        """Make a new current key; the old one is kept, listed as valid until the date given.

        Returns (old key, old id, new key, new id)."""
        ring = self._ring()
        old = self.signing_key()
        old_id = f"ed25519:{ring['current']}"
        archive = self._path.with_name(f"pool-identity-{ring['current']}.key")
        os.replace(self._path, archive)
        new = nacl.signing.SigningKey.generate()
        fd = os.open(self._path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(bytes(self._box.encrypt(bytes(new))))
        ring["old"].append(
            {
                "key_id": old_id,
                "valid_until": old_valid_until,
                "public_key": base64.b64encode(bytes(old.verify_key)).decode("ascii"),
            }
        )
        ring["current"] += 1
        ring_path = self._path.with_name(KEYRING_FILE)
        ring_path.write_text(json.dumps(ring))
        ring_path.chmod(0o600)
        return old, old_id, new, f"ed25519:{ring['current']}"
