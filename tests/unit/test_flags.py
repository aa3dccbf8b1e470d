"""The flag registry: every flag the product sheet names, typed and bounded."""

from __future__ import annotations

import pytest

from domain.context import Scope
from domain.errors import InvalidFlagValue, UnknownFlag
from domain.flags import (
    REGISTRY,
    FlagSpec,
    FlagType,
    Page,
    flag_spec,
    from_event_value,
    to_event_value,
)

# The product sheet's runtime options, each with the flag that carries it.
PRODUCT_SHEET_FLAGS = {
    "auto-pairing": "federation.auto_pairing",
    "request forwarding": "federation.request_forwarding",
    "RAG fanout": "federation.rag_fanout",
    "debug": "pool.debug",
    "rate limit": "api.rate_limit_per_minute",
    "periodic balancer on/off": "cluster.balancer_enabled",
    "balancer interval": "cluster.balancer_interval_seconds",
    "worker migrations": "cluster.worker_migrations_enabled",
    "cross-pool replication": "federation.replication_enabled",
    "failsafe on/off": "cluster.failsafe_enabled",
    "failsafe escalation delay": "cluster.failsafe_escalation_delay_seconds",
    "failover mode": "cluster.failover_mode",
    "auto-purge inactive peers": "federation.auto_purge_inactive_peers",
    "auto-purge threshold": "federation.peer_inactivity_threshold_hours",
    "smart routing": "cluster.smart_routing_enabled",
    "health-check interval": "workers.health_check_interval_seconds",
    "session idle timeout": "auth.session_idle_timeout_minutes",
    "session absolute timeout": "auth.session_absolute_timeout_hours",
    "login lockout threshold": "auth.login_lockout_threshold",
}


@pytest.mark.parametrize(("option", "key"), PRODUCT_SHEET_FLAGS.items())
def test_every_product_sheet_option_is_a_flag(option: str, key: str) -> None:
    spec = REGISTRY[key]
    assert spec.description, option
    assert spec.validate(spec.default) == spec.default


def test_failover_mode_is_auto_or_manual() -> None:
    spec = REGISTRY["cluster.failover_mode"]
    assert spec.type is FlagType.ENUM
    assert spec.choices == ("auto", "manual")
    assert spec.scope is Scope.REPLICATED


def test_a_value_out_of_bounds_names_the_bound() -> None:
    spec = REGISTRY["cluster.balancer_interval_seconds"]
    with pytest.raises(InvalidFlagValue, match="at least 5 seconds, got 1"):
        spec.validate(1)
    with pytest.raises(InvalidFlagValue, match="at most 86400 seconds"):
        spec.parse_text("100000")


@pytest.mark.parametrize(
    ("key", "text", "expected"),
    [
        ("pool.debug", "yes", True),
        ("pool.debug", "OFF", False),
        ("api.rate_limit_per_minute", " 42 ", 42),
        ("cluster.balancer_imbalance_threshold", "0.5", 0.5),
        ("cluster.failover_mode", "auto", "auto"),
        ("pool.maintenance_banner", "Upgrade at 18:00", "Upgrade at 18:00"),
    ],
)
def test_command_line_text_is_parsed_by_type(key: str, text: str, expected: object) -> None:
    assert flag_spec(key).parse_text(text) == expected


@pytest.mark.parametrize(
    ("key", "text", "message"),
    [
        ("pool.debug", "maybe", "not a boolean"),
        ("api.rate_limit_per_minute", "1.5", "not a whole number"),
        ("cluster.balancer_imbalance_threshold", "nan", "finite"),
        ("cluster.balancer_imbalance_threshold", "1.5", "at most 1.0"),
        ("cluster.failover_mode", "sometimes", "one of auto, manual"),
        ("pool.maintenance_banner", "x" * 201, "at most 200 characters"),
    ],
)
def test_bad_text_is_refused_with_the_reason(key: str, text: str, message: str) -> None:
    with pytest.raises(InvalidFlagValue, match=message) as refused:
        flag_spec(key).parse_text(text)
    assert refused.value.detail.startswith(key)


def test_json_values_must_have_the_right_type() -> None:
    with pytest.raises(InvalidFlagValue):
        REGISTRY["api.rate_limit_per_minute"].validate(True)  # a bool is not a number here
    with pytest.raises(InvalidFlagValue):
        REGISTRY["pool.debug"].validate("true")


def test_unknown_flag_suggests_close_names() -> None:
    with pytest.raises(UnknownFlag, match=r"did you mean pool\.debug"):
        flag_spec("debug")


def test_floats_travel_in_events_as_decimal_text() -> None:
    spec = REGISTRY["cluster.balancer_imbalance_threshold"]
    stored = to_event_value(spec, 0.1)
    assert stored == "0.1"
    assert from_event_value(spec, stored) == 0.1


# No flag of the product is a list today; the type stays ready for the ones that will be.
ADDRESSES = FlagSpec(
    "test.addresses",
    FlagType.LIST,
    [],
    Scope.LOCAL,
    "Addresses.",
    Page.ADVANCED,
    maximum=3,
    item_pattern=r"^[^@\s]+@[^@\s]+$",
)


def test_list_flags_split_and_check_every_item() -> None:
    assert ADDRESSES.parse_text("a@x.org, b@y.org") == ["a@x.org", "b@y.org"]
    with pytest.raises(InvalidFlagValue, match="not valid"):
        ADDRESSES.parse_text("not-an-address")
