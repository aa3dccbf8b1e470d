"""Pool-to-pool trust: signatures, signed requests, signed event batches and their checks.

Every signature covers the canonical encoding (domain.canonical) with a prefix naming its use.
A batch carries one signature over its header; the hash chain ties each event to that header,
so one Ed25519 verification covers the whole batch.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import nacl.exceptions
import nacl.signing
import redis

from domain.canonical import NotCanonical, canonical, chain_hash
from infrastructure.identity import FileIdentityKeys
from infrastructure.ollama_health import tls_context

MAX_SKEW_SECONDS = 300
NONCE_TTL_SECONDS = 2 * MAX_SKEW_SECONDS
HEADERS = ("origin", "destination", "timestamp", "nonce", "key", "signature")


class FederationRefused(Exception):
    """A pool-to-pool message failed a check; the message says which one."""


class PeerUnreachable(FederationRefused):
    """The peer did not answer, or not with a usable HTTP answer (as opposed to a refusal)."""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (ValueError, TypeError):
        raise FederationRefused("malformed base64") from None


def verify(public_key: str, prefix: str, value: Any, signature: str) -> None:
    try:
        nacl.signing.VerifyKey(unb64(public_key)).verify(canonical(prefix, value), unb64(signature))
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, NotCanonical):
        raise FederationRefused(f"bad signature ({prefix})") from None


class PoolSigner:
    """Signs with this pool's identity key (made during onboarding)."""

    def __init__(self, keys: FileIdentityKeys, pool_id: str) -> None:
        self._keys = keys
        self.pool_id = pool_id
        self._signing: nacl.signing.SigningKey | None = None

    @property
    def ready(self) -> bool:
        return self._keys.path.exists()

    def _key(self) -> nacl.signing.SigningKey:
        if self._signing is None:
            if not self.ready:
                raise FederationRefused("this pool has no identity yet (finish onboarding)")
            self._signing = self._keys.signing_key()
        return self._signing

    @property
    def key_id(self) -> str:
        return self._keys.current_key_id()

    def forget_cached_key(self) -> None:
        self._signing = None

    def public_key(self) -> str:
        return b64(bytes(self._key().verify_key))

    def sign(self, prefix: str, value: Any) -> str:
        return b64(self._key().sign(canonical(prefix, value)).signature)

    def rotate(self, old_valid_until: str) -> dict[str, Any]:
        """A new key; returns the rotation announcement signed by the old and the new key."""
        old, old_id, new, new_id = self._keys.rotate(old_valid_until)
        self._signing = None
        announcement = {
            "pool_id": self.pool_id,
            "old_key_id": old_id,
            "new_key_id": new_id,
            "new_public_key": b64(bytes(new.verify_key)),
            "old_valid_until": old_valid_until,
        }
        message = canonical("archipel/rotation/v1", announcement)
        signed = {
            "announcement": announcement,
            "signature_old": b64(old.sign(message).signature),
            "signature_new": b64(new.sign(message).signature),
        }
        self._keys.keep_rotation(signed)
        return signed

    def key_document(self, url: str, name: str) -> dict[str, Any]:
        document = {
            "pool_id": self.pool_id,
            "url": url,
            "name": name,
            "keys": [
                {"key_id": self.key_id, "public_key": self.public_key(), "valid_until": None},
                *self._keys.old_keys(),
            ],
            # Each announcement is signed by the old and the new key: a peer that missed one
            # follows them from the key it pinned to the current one.
            "rotations": self._keys.rotations(),
            "issued_at": datetime.now(UTC).isoformat(),
        }
        return {"document": document, "signature": self.sign("archipel/key/v1", document)}


def check_key_document(signed: dict[str, Any]) -> dict[str, Any]:
    """A self-signed key document, checked; returns the document."""
    document = signed.get("document")
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise FederationRefused("malformed key document")
    current = [k for k in document["keys"] if k.get("valid_until") is None]
    if len(current) != 1:
        raise FederationRefused("a key document must list exactly one current key")
    verify(current[0]["public_key"], "archipel/key/v1", document, str(signed.get("signature")))
    return document


def check_rotation(signed: dict[str, Any], origin: str, pinned_key: str) -> tuple[str, str]:
    """A key rotation announced by `origin`: signed by the key we pinned and by the new one.

    Returns (new key id, new public key)."""
    announcement = signed.get("announcement")
    if not isinstance(announcement, dict) or announcement.get("pool_id") != origin:
        raise FederationRefused("malformed key rotation announcement")
    verify(pinned_key, "archipel/rotation/v1", announcement, str(signed.get("signature_old")))
    verify(
        str(announcement.get("new_public_key")),
        "archipel/rotation/v1",
        announcement,
        str(signed.get("signature_new")),
    )
    return str(announcement["new_key_id"]), str(announcement["new_public_key"])


def follow_rotations(
    document: dict[str, Any], origin: str, pinned_id: str, pinned_key: str
) -> tuple[str, str] | None:
    """From the key we pinned to the document's current key through its signed rotations.

    Returns the current (key id, public key) if every step checks out, else None."""
    if document.get("pool_id") != origin:
        return None
    target_id, _ = current_key(document)
    steps = {
        str(r.get("announcement", {}).get("old_key_id")): r
        for r in document.get("rotations") or []
        if isinstance(r, dict)
    }
    key_id, key = pinned_id, pinned_key
    for _ in range(len(steps)):
        if key_id == target_id:
            break
        step = steps.get(key_id)
        if step is None:
            return None
        try:
            key_id, key = check_rotation(step, origin, key)
        except FederationRefused:
            return None
    return (key_id, key) if key_id == target_id else None


def current_key(document: dict[str, Any]) -> tuple[str, str]:
    key = next(k for k in document["keys"] if k.get("valid_until") is None)
    return str(key["key_id"]), str(key["public_key"])


# --- signed requests ----------------------------------------------------------------------


def request_claim(method: str, path: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    return {
        "method": method.upper(),
        "path": path,
        "origin": headers["origin"],
        "destination": headers["destination"],
        "timestamp": int(headers["timestamp"]),
        "nonce": headers["nonce"],
        "body_sha256": hashlib.sha256(body).hexdigest(),
    }


def signed_headers(
    signer: PoolSigner, destination: str, method: str, path: str, body: bytes
) -> dict[str, str]:
    fields = {
        "origin": signer.pool_id,
        "destination": destination,
        "timestamp": str(int(time.time())),
        "nonce": secrets.token_hex(16),
    }
    claim = request_claim(method, path, fields, body)
    fields["key"] = signer.key_id
    fields["signature"] = signer.sign("archipel/request/v1", claim)
    return {f"X-Archipel-{name.capitalize()}": value for name, value in fields.items()}


def read_signed_headers(headers: Any) -> dict[str, str]:
    found = {name: headers.get(f"x-archipel-{name}") for name in HEADERS}
    missing = [name for name, value in found.items() if not value]
    if missing:
        raise FederationRefused(f"unsigned request (missing {', '.join(missing)})")
    return {name: str(value) for name, value in found.items()}


def check_signed_request(
    fields: dict[str, str],
    method: str,
    path: str,
    body: bytes,
    own_pool: str,
    public_key: str,
    nonces: redis.Redis,
) -> None:
    """Skew, destination, signature, then nonce (a replay is refused)."""
    try:
        skew = abs(time.time() - int(fields["timestamp"]))
    except ValueError:
        raise FederationRefused("malformed timestamp") from None
    if skew > MAX_SKEW_SECONDS:
        raise FederationRefused(f"clock skew of {skew:.0f} s is over {MAX_SKEW_SECONDS} s")
    if fields["destination"] != own_pool:
        raise FederationRefused("this request is meant for another pool")
    verify(
        public_key,
        "archipel/request/v1",
        request_claim(method, path, fields, body),
        fields["signature"],
    )
    if not nonces.set(
        f"archipel:nonce:{fields['origin']}:{fields['nonce']}", "1", nx=True, ex=NONCE_TTL_SECONDS
    ):
        raise FederationRefused("replayed request (nonce seen before)")


class PeerClient:
    """Signed HTTP calls to another pool."""

    def __init__(self, signer: PoolSigner) -> None:
        self._signer = signer

    def key_document(self, url: str) -> dict[str, Any]:
        try:
            answer = httpx.get(f"{url}/federation/v1/key", timeout=10, verify=tls_context())
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as error:
            raise PeerUnreachable(f"cannot reach {url}: {error}") from None
        if answer.status_code != 200:
            raise FederationRefused(f"{url} is not an Archipel pool (no key document)")
        return dict(answer.json())

    def call(
        self,
        url: str,
        destination: str,
        method: str,
        path: str,
        payload: Any = None,
        timeout: float = 30,
    ) -> httpx.Response:
        body = b"" if payload is None else json.dumps(payload).encode()
        headers = signed_headers(self._signer, destination, method, path, body)
        if payload is not None:
            headers["Content-Type"] = "application/json"
        try:
            return httpx.request(
                method,
                f"{url}{path}",
                content=body,
                headers=headers,
                timeout=timeout,
                verify=tls_context(),
            )
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as error:
            raise PeerUnreachable(f"cannot reach {url}: {error}") from None

    @contextlib.contextmanager
    def stream(
        self, url: str, destination: str, method: str, path: str, timeout: float = 60
    ) -> Iterator[httpx.Response]:
        """A signed request whose answer is read as it arrives (model files)."""
        headers = signed_headers(self._signer, destination, method, path, b"")
        try:
            with httpx.stream(
                method, f"{url}{path}", headers=headers, timeout=timeout, verify=tls_context()
            ) as answer:
                yield answer
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as error:
            raise PeerUnreachable(f"cannot reach {url}: {error}") from None


# --- batches ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    header: dict[str, Any]
    events: list[dict[str, Any]]
    signature: str
    hashes: list[str]  # the chain hash after each event, as checked


def sign_batch(
    signer: PoolSigner, destination: str, rows: list[dict[str, Any]], prev_hash: str, head_seq: int
) -> dict[str, Any]:
    header = {
        "origin": signer.pool_id,
        "destination": destination,
        "key_id": signer.key_id,
        "first_seq": rows[0]["seq"] if rows else None,
        "last_seq": rows[-1]["seq"] if rows else None,
        "count": len(rows),
        "prev_hash": prev_hash,
        "head_hash": rows[-1]["hash"] if rows else prev_hash,
        "origin_head_seq": head_seq,
        "created_at": datetime.now(UTC).isoformat(),
    }
    return {
        "header": header,
        "events": [row["event"] for row in rows],
        "signature": signer.sign("archipel/batch/v1", header),
    }


def check_batch(
    body: Any, origin: str, own_pool: str, public_key: str, after: int, known_hash: str
) -> Batch:
    """schema -> signature -> chain continuity; raises FederationRefused with the reason."""
    if (
        not isinstance(body, dict)
        or not isinstance(body.get("header"), dict)
        or not isinstance(body.get("events"), list)
    ):
        raise FederationRefused("schema: a batch has a header, events and a signature")
    header, events = body["header"], body["events"]
    expected = {
        "origin",
        "destination",
        "key_id",
        "first_seq",
        "last_seq",
        "count",
        "prev_hash",
        "head_hash",
        "origin_head_seq",
        "created_at",
    }
    if set(header) != expected or not all(isinstance(e, dict) for e in events):
        raise FederationRefused("schema: unexpected header fields or events")
    verify(public_key, "archipel/batch/v1", header, str(body.get("signature")))
    if header["origin"] != origin or header["destination"] != own_pool:
        raise FederationRefused("the batch is from another origin or for another pool")
    if header["count"] != len(events):
        raise FederationRefused("chain: the batch has more or fewer events than its header says")
    if header["prev_hash"] != known_hash:
        raise FederationRefused("chain: the batch does not continue the chain we hold")
    running = known_hash
    hashes: list[str] = []
    for offset, event in enumerate(events, start=1):
        if event.get("seq") != after + offset:
            raise FederationRefused(f"chain: expected seq {after + offset}, got {event.get('seq')}")
        try:
            running = chain_hash(running, event)
        except NotCanonical as error:
            raise FederationRefused(f"schema: {error}") from None
        hashes.append(running)
    if running != header["head_hash"]:
        raise FederationRefused("chain: the events do not hash to the signed head")
    return Batch(header, events, str(body["signature"]), hashes)
