"""Bootstrap configuration: the only configuration that lives outside the database.

It comes from a TOML file (`--config`) and command-line flags, never from environment
variables. Everything else is a runtime flag, stored as events and edited in the admin UI.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

ROLES = ("web", "workers", "projections", "scheduler")


class ConfigError(Exception):
    """A bootstrap setting is wrong; the message names the key and where it came from."""


@dataclass(frozen=True)
class BootstrapConfig:
    data_dir: Path = Path("./var")
    database_url: str | None = None
    redis_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str | None = None
    roles: tuple[str, ...] = ROLES
    # Where each value came from: "default", "file <path>" or "flag".
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def effective_public_url(self) -> str:
        return self.public_url or f"http://{self.host}:{self.port}"

    def source_of(self, key: str) -> str:
        return self.sources.get(key, "default")

    def shown(self) -> list[tuple[str, str, str]]:
        """(key, value with secrets masked, source) for `archipel config show`."""
        rows = []
        for key in SETTABLE:
            value = getattr(self, key)
            if key in ("database_url", "redis_url") and value:
                text = mask_url(value)
            elif key == "roles":
                text = ",".join(value)
            elif value is None:
                text = "(embedded)" if key.endswith("_url") and key != "public_url" else "(unset)"
            else:
                text = str(value)
            rows.append((key, text, self.source_of(key)))
        return rows


SETTABLE = tuple(f.name for f in fields(BootstrapConfig) if f.name != "sources")


def mask_url(url: str) -> str:
    """Hide the password of a connection URL."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def _check(key: str, value: Any, origin: str) -> Any:
    """Validate one setting; raise ConfigError naming the key and its origin."""

    def fail(why: str) -> ConfigError:
        return ConfigError(f"{origin}: {key}: {why}")

    match key:
        case "data_dir":
            if not isinstance(value, str | Path) or not str(value):
                raise fail("must be a path (text)")
            return Path(value)
        case "database_url":
            if not isinstance(value, str) or urlsplit(value).scheme not in (
                "postgresql",
                "postgres",
            ):
                raise fail("must be a postgresql:// URL")
            return value
        case "redis_url":
            if not isinstance(value, str) or urlsplit(value).scheme not in (
                "redis",
                "rediss",
                "unix",
            ):
                raise fail("must be a redis://, rediss:// or unix:// URL")
            return value
        case "host":
            if not isinstance(value, str) or not value:
                raise fail("must be a host name or address (text)")
            return value
        case "port":
            if isinstance(value, str) and value.isdigit():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
                raise fail(f"must be a whole number from 1 to 65535, got {value!r}")
            return value
        case "public_url":
            if not isinstance(value, str) or urlsplit(value).scheme not in ("http", "https"):
                raise fail("must be an http:// or https:// URL")
            return value.rstrip("/")
        case "roles":
            if isinstance(value, str):
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, list) or not value or not all(v in ROLES for v in value):
                raise fail(f"must be a non-empty list drawn from {', '.join(ROLES)}")
            return tuple(dict.fromkeys(value))
    raise fail(f"unknown key (known keys: {', '.join(SETTABLE)})")


def read_config_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read config file: {error.strerror or error}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    return data


def load_config(
    config_file: Path | None = None, flags: dict[str, Any] | None = None
) -> BootstrapConfig:
    """Defaults, then the file, then command-line flags (later wins)."""
    config = BootstrapConfig()
    sources: dict[str, str] = {}
    values: dict[str, Any] = {}
    if config_file is not None:
        for key, value in read_config_file(config_file).items():
            values[key] = _check(key, value, str(config_file))
            sources[key] = f"file {config_file}"
    for key, value in (flags or {}).items():
        if value is None:
            continue
        values[key] = _check(key, value, f"--{key.replace('_', '-')}")
        sources[key] = "flag"
    return replace(config, **values, sources=sources)
