"""The one canonical encoding, used for every hash and signature between pools.

UTF-8 JSON with keys sorted, no insignificant whitespace, integers only within +/-(2^53 - 1)
and no floats (decimals travel as strings), preceded by a domain-separation prefix naming the
use (`archipel/event/v1`, ...), so a signature made for one use can never pass for another.
Test vectors: docs/federation.md.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

MAX_SAFE_INTEGER = 2**53 - 1
PREFIXES = (
    "archipel/event/v1",
    "archipel/chain/v1",
    "archipel/batch/v1",
    "archipel/request/v1",
    "archipel/key/v1",
    "archipel/pairing/v1",
    "archipel/rotation/v1",
)


class NotCanonical(ValueError):
    """A value that has no canonical form (a float, a huge integer, a non-string key...)."""


def _check(value: Any, path: str) -> None:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise NotCanonical(f"{path}: integer {value} is beyond +/-(2^53 - 1)")
        return
    if isinstance(value, float):
        raise NotCanonical(f"{path}: floats are not canonical; send decimals as strings")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise NotCanonical(f"{path}: object keys must be strings, got {key!r}")
            _check(item, f"{path}.{key}")
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check(item, f"{path}[{index}]")
        return
    raise NotCanonical(f"{path}: {type(value).__name__} has no canonical form")


def encode(value: Any) -> bytes:
    """The canonical bytes of a JSON value (without prefix)."""
    _check(value, "$")
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def canonical(prefix: str, value: Any) -> bytes:
    """What is hashed or signed: the prefix, a newline, then the canonical JSON."""
    if prefix not in PREFIXES:
        raise NotCanonical(f"unknown domain-separation prefix {prefix!r}")
    return prefix.encode("ascii") + b"\n" + encode(value)


def digest(prefix: str, value: Any) -> str:
    return hashlib.sha256(canonical(prefix, value)).hexdigest()


GENESIS = "0" * 64  # the hash before the first event of a log


def chain_hash(previous: str, event: Any) -> str:
    """hash_n = sha256(prefix || hash_(n-1) || canonical(event_n)), hex."""
    return hashlib.sha256(
        b"archipel/chain/v1\n" + previous.encode("ascii") + encode(event)
    ).hexdigest()


def plain(value: Any) -> Any:
    """Make a JSON value canonical-ready: floats become decimal strings (how events carry them)."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value
