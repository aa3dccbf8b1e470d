"""The runtime flag registry: every option an admin can change, with its type and bounds.

Flags are the only runtime configuration; they live as events in the database and are edited
in the admin UI (Advanced settings or the flag's own page). Declaring a flag here is all it
takes for it to appear in `archipel settings list`, the settings API and the UI.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any

from domain.context import Scope
from domain.errors import InvalidFlagValue, UnknownFlag

FlagValue = bool | int | float | str | list[str]


class FlagType(StrEnum):
    BOOL = "bool"
    INT = "int"
    FLOAT = "float"
    ENUM = "enum"
    STRING = "string"
    LIST = "list"


class Page(StrEnum):
    """Which dashboard page shows the flag."""

    ADVANCED = "advanced-settings"
    FEDERATION = "federation"
    CLUSTER_CONFIG = "cluster-config"
    INCIDENTS = "incidents-migrations"
    WORKERS = "workers"
    API = "api"
    SMTP = "smtp"


_TRUE = {"true", "yes", "on", "1", "y"}
_FALSE = {"false", "no", "off", "0", "n"}


@dataclass(frozen=True)
class FlagSpec:
    key: str
    type: FlagType
    default: FlagValue
    scope: Scope
    description: str
    page: Page
    minimum: int | float | None = None
    maximum: int | float | None = None
    choices: tuple[str, ...] = ()
    max_length: int = 500
    item_pattern: str | None = None  # for lists: every item must match
    unit: str = ""

    def parse_text(self, text: str) -> FlagValue:
        """Turn command-line text into a valid value, or raise `InvalidFlagValue`."""
        raw = text.strip()
        match self.type:
            case FlagType.BOOL:
                if raw.lower() in _TRUE:
                    return self.validate(True)
                if raw.lower() in _FALSE:
                    return self.validate(False)
                raise self._invalid(f"{text!r} is not a boolean (use true or false)")
            case FlagType.INT:
                try:
                    return self.validate(int(raw))
                except ValueError:
                    raise self._invalid(f"{text!r} is not a whole number") from None
            case FlagType.FLOAT:
                try:
                    return self.validate(float(Decimal(raw)))
                except (InvalidOperation, ValueError):
                    raise self._invalid(f"{text!r} is not a number") from None
            case FlagType.LIST:
                items = [item.strip() for item in raw.split(",") if item.strip()]
                return self.validate(items)
            case _:
                return self.validate(text)

    def validate(self, value: Any) -> FlagValue:
        """Check a JSON-shaped value against type and bounds; return it normalised."""
        match self.type:
            case FlagType.BOOL:
                if not isinstance(value, bool):
                    raise self._invalid("must be true or false")
                return value
            case FlagType.INT:
                if isinstance(value, bool) or not isinstance(value, int):
                    raise self._invalid("must be a whole number")
                self._check_bounds(value)
                return value
            case FlagType.FLOAT:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise self._invalid("must be a number")
                if not math.isfinite(value):
                    raise self._invalid("must be a finite number")
                self._check_bounds(value)
                return float(value)
            case FlagType.ENUM:
                if value not in self.choices:
                    raise self._invalid(f"must be one of {', '.join(self.choices)}")
                return str(value)
            case FlagType.STRING:
                if not isinstance(value, str):
                    raise self._invalid("must be text")
                if len(value) > self.max_length:
                    raise self._invalid(f"must be at most {self.max_length} characters")
                return value
            case FlagType.LIST:
                return self._validate_list(value)
        raise AssertionError(self.type)  # pragma: no cover

    def _validate_list(self, value: Any) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._invalid("must be a list of text items")
        if self.maximum is not None and len(value) > self.maximum:
            raise self._invalid(f"must have at most {self.maximum} items")
        if self.item_pattern:
            pattern = re.compile(self.item_pattern)
            for item in value:
                if not pattern.match(item):
                    raise self._invalid(f"item {item!r} is not valid")
        return list(value)

    def _check_bounds(self, value: int | float) -> None:
        if self.minimum is not None and value < self.minimum:
            raise self._invalid(f"must be at least {self.minimum}{self._unit()}, got {value}")
        if self.maximum is not None and value > self.maximum:
            raise self._invalid(f"must be at most {self.maximum}{self._unit()}, got {value}")

    def _unit(self) -> str:
        return f" {self.unit}" if self.unit else ""

    def _invalid(self, why: str) -> InvalidFlagValue:
        return InvalidFlagValue(f"{self.key}: {why}")


def _flags(*specs: FlagSpec) -> dict[str, FlagSpec]:
    return {spec.key: spec for spec in specs}


L, C = Scope.LOCAL, Scope.REPLICATED  # local flags stay here; cluster flags replicate

REGISTRY: dict[str, FlagSpec] = _flags(
    # Federation
    FlagSpec(
        "federation.auto_pairing",
        FlagType.BOOL,
        False,
        C,
        "Pair automatically with pools introduced by a common paired peer.",
        Page.FEDERATION,
    ),
    FlagSpec(
        "federation.request_forwarding",
        FlagType.BOOL,
        True,
        C,
        "Forward LLM requests to a paired pool when no local worker can serve them.",
        Page.FEDERATION,
    ),
    FlagSpec(
        "federation.rag_fanout",
        FlagType.BOOL,
        False,
        C,
        "Search local documents of paired pools through signed RAG fanout requests.",
        Page.FEDERATION,
    ),
    FlagSpec(
        "federation.replication_enabled",
        FlagType.BOOL,
        True,
        C,
        "Replicate memories, catalog and cluster data to paired pools (signed batches).",
        Page.FEDERATION,
    ),
    FlagSpec(
        "federation.auto_purge_inactive_peers",
        FlagType.BOOL,
        False,
        C,
        "Remove paired pools that have not answered for longer than the threshold.",
        Page.FEDERATION,
    ),
    FlagSpec(
        "federation.peer_inactivity_threshold_hours",
        FlagType.INT,
        72,
        C,
        "How long a peer may stay silent before auto-purge removes it.",
        Page.FEDERATION,
        minimum=1,
        maximum=8760,
        unit="hours",
    ),
    # Cluster behaviour
    FlagSpec(
        "cluster.failover_mode",
        FlagType.ENUM,
        "manual",
        C,
        "auto: move work off a failed pool or worker at once; manual: wait for an admin.",
        Page.CLUSTER_CONFIG,
        choices=("auto", "manual"),
    ),
    FlagSpec(
        "cluster.balancer_enabled",
        FlagType.BOOL,
        True,
        C,
        "Run the periodic balancer that spreads load across workers.",
        Page.CLUSTER_CONFIG,
    ),
    FlagSpec(
        "cluster.balancer_interval_seconds",
        FlagType.INT,
        60,
        C,
        "Time between two balancer runs.",
        Page.CLUSTER_CONFIG,
        minimum=5,
        maximum=86400,
        unit="seconds",
    ),
    FlagSpec(
        "cluster.balancer_imbalance_threshold",
        FlagType.FLOAT,
        0.25,
        C,
        "Load spread (0 to 1) above which the balancer proposes migrations.",
        Page.CLUSTER_CONFIG,
        minimum=0.0,
        maximum=1.0,
    ),
    FlagSpec(
        "cluster.balancer_cooldown_seconds",
        FlagType.INT,
        300,
        C,
        "After the balancer acts on a model, how long it leaves that model alone.",
        Page.CLUSTER_CONFIG,
        minimum=0,
        maximum=86400,
        unit="seconds",
    ),
    FlagSpec(
        "cluster.worker_migrations_enabled",
        FlagType.BOOL,
        True,
        C,
        "Execute scheduled worker migration orders.",
        Page.INCIDENTS,
    ),
    FlagSpec(
        "cluster.failsafe_enabled",
        FlagType.BOOL,
        True,
        C,
        "Escalate incidents that stay pending longer than the escalation delay.",
        Page.INCIDENTS,
    ),
    FlagSpec(
        "cluster.failsafe_escalation_delay_seconds",
        FlagType.INT,
        900,
        C,
        "How long an incident may stay unacknowledged before it is escalated by e-mail.",
        Page.INCIDENTS,
        minimum=10,
        maximum=604800,
        unit="seconds",
    ),
    FlagSpec(
        "cluster.catalog_master_pool",
        FlagType.STRING,
        "",
        C,
        "Pool id of the catalog master: only its catalog edits are accepted from peers "
        "(empty: every pool keeps its own catalog).",
        Page.CLUSTER_CONFIG,
        max_length=64,
    ),
    FlagSpec(
        "cluster.smart_routing_enabled",
        FlagType.BOOL,
        False,
        C,
        "Route each LLM request to the model best suited to it (rules, capabilities, load).",
        Page.API,
    ),
    # Pool-local behaviour
    FlagSpec(
        "pool.debug",
        FlagType.BOOL,
        False,
        L,
        "Verbose logs and debug details in error responses of this pool.",
        Page.ADVANCED,
    ),
    FlagSpec(
        "pool.maintenance_banner",
        FlagType.STRING,
        "",
        L,
        "Text shown to every admin in the dashboard header (empty: no banner).",
        Page.ADVANCED,
        max_length=200,
    ),
    FlagSpec(
        "pool.disk_space_low_percent",
        FlagType.INT,
        10,
        L,
        "Open an incident when the data directory's disk has less free space than this.",
        Page.INCIDENTS,
        minimum=1,
        maximum=90,
        unit="%",
    ),
    FlagSpec(
        "api.rate_limit_per_minute",
        FlagType.INT,
        120,
        L,
        "Requests per minute allowed for each API token.",
        Page.API,
        minimum=1,
        maximum=100000,
        unit="requests/minute",
    ),
    FlagSpec(
        "workers.health_check_interval_seconds",
        FlagType.INT,
        10,
        L,
        "Time between two health checks of each worker.",
        Page.WORKERS,
        minimum=2,
        maximum=3600,
        unit="seconds",
    ),
    FlagSpec(
        "auth.session_idle_timeout_minutes",
        FlagType.INT,
        30,
        L,
        "An admin session ends after this long without activity.",
        Page.ADVANCED,
        minimum=5,
        maximum=1440,
        unit="minutes",
    ),
    FlagSpec(
        "auth.session_absolute_timeout_hours",
        FlagType.INT,
        12,
        L,
        "An admin session ends this long after login, active or not.",
        Page.ADVANCED,
        minimum=1,
        maximum=168,
        unit="hours",
    ),
    FlagSpec(
        "auth.login_lockout_threshold",
        FlagType.INT,
        5,
        L,
        "Failed logins (per account and per address) before login backs off.",
        Page.ADVANCED,
        minimum=3,
        maximum=100,
        unit="attempts",
    ),
)


def flag_spec(key: str, registry: dict[str, FlagSpec] | None = None) -> FlagSpec:
    specs = REGISTRY if registry is None else registry
    try:
        return specs[key]
    except KeyError:
        close = [k for k in specs if key.split(".")[-1] in k]
        hint = f" (did you mean {', '.join(close[:3])}?)" if close else ""
        raise UnknownFlag(f"unknown flag {key!r}{hint}; see `archipel settings list`") from None


def flags_in_scope(scope: Scope) -> Sequence[FlagSpec]:
    return [spec for spec in REGISTRY.values() if spec.scope is scope]


def to_event_value(spec: FlagSpec, value: FlagValue) -> Any:
    """Events carry no floats (federation's canonical encoding forbids them): decimals as text."""
    if spec.type is FlagType.FLOAT:
        return str(Decimal(repr(value)))
    return value


def from_event_value(spec: FlagSpec, stored: Any) -> FlagValue:
    if spec.type is FlagType.FLOAT:
        return float(Decimal(stored))
    return stored  # type: ignore[no-any-return]
