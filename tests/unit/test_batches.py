"""Signed batches: a genuine one passes; every tampered variant is refused with a reason."""

from __future__ import annotations

import json
from pathlib import Path

import nacl.signing
import pytest

from domain.canonical import GENESIS, chain_hash
from infrastructure.federation import FederationRefused, PoolSigner, check_batch, sign_batch
from infrastructure.identity import FileIdentityKeys


@pytest.fixture
def signer(tmp_path: Path) -> PoolSigner:
    keys = FileIdentityKeys(tmp_path, b"k" * 32)
    keys.generate()
    return PoolSigner(keys, "pool-a")


def genuine(signer: PoolSigner, count: int = 3) -> dict[str, object]:
    rows, previous = [], GENESIS
    for seq in range(1, count + 1):
        event = {
            "seq": seq,
            "type": "Worker.Registered",
            "aggregate_id": f"w{seq}",
            "payload": {"name": f"gpu-{seq}", "capacity": seq},
            "meta": {"actor": "x"},
        }
        previous = chain_hash(previous, event)
        rows.append({"seq": seq, "event": event, "hash": previous})
    return sign_batch(signer, "pool-b", rows, GENESIS, head_seq=count)


def check(body: object, signer: PoolSigner) -> None:
    check_batch(body, "pool-a", "pool-b", signer.public_key(), after=0, known_hash=GENESIS)


def test_a_genuine_batch_passes(signer: PoolSigner) -> None:
    check(genuine(signer), signer)


def test_every_byte_flipped_is_refused(signer: PoolSigner) -> None:
    raw = bytearray(json.dumps(genuine(signer)).encode())
    refused = 0
    for position in range(len(raw)):
        tampered = bytearray(raw)
        tampered[position] ^= 0x01
        try:
            body = json.loads(tampered)
        except (ValueError, UnicodeDecodeError):
            refused += 1  # not even JSON: refused at the schema step by the puller
            continue
        if body == json.loads(raw):
            continue  # a flip that changes nothing JSON means (e.g. in insignificant whitespace)
        with pytest.raises(FederationRefused):
            check(body, signer)
        refused += 1
    assert refused > len(raw) * 0.9


@pytest.mark.parametrize(
    "variant",
    [
        "reorder",
        "drop",
        "duplicate",
        "swap-signature",
        "edit",
        "other-destination",
        "resign-with-other-key",
    ],
)
def test_structural_tampering_is_refused(signer: PoolSigner, variant: str) -> None:
    body = genuine(signer)
    events = list(body["events"])  # type: ignore[call-overload]
    if variant == "reorder":
        events[0], events[1] = events[1], events[0]
    elif variant == "drop":
        events.pop()
    elif variant == "duplicate":
        events.append(events[-1])
    elif variant == "edit":
        events[1] = {**events[1], "payload": {"name": "evil", "capacity": 2}}
    body["events"] = events
    if variant == "swap-signature":
        body["signature"] = genuine(signer, count=2)["signature"]
    if variant == "other-destination":
        body["header"] = {**body["header"], "destination": "pool-c"}  # type: ignore[dict-item]
    if variant == "resign-with-other-key":
        other = nacl.signing.SigningKey.generate()
        from domain.canonical import canonical
        from infrastructure.federation import b64

        body["signature"] = b64(
            other.sign(canonical("archipel/batch/v1", body["header"])).signature
        )
    with pytest.raises(FederationRefused):
        check(body, signer)


def test_a_replayed_old_batch_does_not_continue_the_chain(signer: PoolSigner) -> None:
    old = genuine(signer)
    held = old["header"]["head_hash"]  # type: ignore[index]
    with pytest.raises(FederationRefused, match="does not continue"):
        check_batch(old, "pool-a", "pool-b", signer.public_key(), after=3, known_hash=held)
