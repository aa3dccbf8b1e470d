"""The canonical encoding: the published test vectors, and what has no canonical form."""

from __future__ import annotations

import pytest

from domain.canonical import (
    GENESIS,
    NotCanonical,
    canonical,
    chain_hash,
    digest,
    encode,
    plain,
)

# These vectors are published in docs/federation.md: another implementation must match them.
VECTORS = [
    ({"b": 1, "a": [True, None, "é"]}, b'{"a":[true,null,"\xc3\xa9"],"b":1}'),
    ({"z": {"y": "2", "x": -9007199254740991}}, b'{"z":{"x":-9007199254740991,"y":"2"}}'),
    ([], b"[]"),
]


@pytest.mark.parametrize(("value", "expected"), VECTORS)
def test_vectors(value: object, expected: bytes) -> None:
    assert encode(value) == expected


def test_prefixed_digest_and_chain_vectors() -> None:
    event = {"seq": 1, "type": "Worker.Registered", "payload": {"name": "gpu-1"}}
    assert canonical("archipel/event/v1", event) == (
        b'archipel/event/v1\n{"payload":{"name":"gpu-1"},"seq":1,"type":"Worker.Registered"}'
    )
    assert digest("archipel/event/v1", event) == (
        "2a0d802f4bad2e3fb62bc1b092dccb26b619e8c07c1d685fd3e8f588c73d97c5"
    )
    assert chain_hash(GENESIS, event) == (
        "88555d8e59af63e30e04bd8965b1337f20c91b53d07c5ec185e211ec7ac7e645"
    )
    first = chain_hash(GENESIS, event)
    assert first == chain_hash(
        GENESIS, {"type": "Worker.Registered", "seq": 1, "payload": {"name": "gpu-1"}}
    )  # key order irrelevant
    assert chain_hash(first, event) != first


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (1.5, "floats"),
        (2**53, "beyond"),
        ({1: "x"}, "keys must be strings"),
        (b"bytes", "no canonical form"),
        (float("nan"), "floats"),
    ],
)
def test_values_without_canonical_form_are_refused(value: object, why: str) -> None:
    with pytest.raises(NotCanonical, match=why):
        encode(value)


def test_unknown_prefix_is_refused() -> None:
    with pytest.raises(NotCanonical, match="prefix"):
        canonical("archipel/whatever/v9", {})


def test_plain_turns_floats_into_decimal_strings() -> None:
    assert plain({"a": 0.25, "b": [1, 2.5]}) == {"a": "0.25", "b": [1, "2.5"]}
