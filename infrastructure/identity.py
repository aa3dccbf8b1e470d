"""The pool's Ed25519 identity: the private key sealed with the master key, mode 0600."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import nacl.secret
import nacl.signing

KEY_FILE = "pool-identity.key"


class IdentityExists(Exception):
    pass


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
        return "ed25519:1", public

    def signing_key(self) -> nacl.signing.SigningKey:
        return nacl.signing.SigningKey(self._box.decrypt(self._path.read_bytes()))
