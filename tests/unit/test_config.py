"""The bootstrap config: defaults, a TOML file, flags, and one clear line when something's off."""

from __future__ import annotations

from pathlib import Path

import pytest

from infrastructure.config import ConfigError, load_config, mask_url


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "archipel.toml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    config = load_config()
    assert config.data_dir == Path("./var")
    assert (config.host, config.port) == ("127.0.0.1", 8080)
    assert config.database_url is None and config.redis_url is None
    assert config.roles == ("web", "workers", "projections", "scheduler")
    assert config.source_of("port") == "default"


def test_flags_override_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'port = 9000\nhost = "0.0.0.0"\nroles = ["web"]\n')
    config = load_config(path, {"port": 9100, "data_dir": None})
    assert config.port == 9100 and config.source_of("port") == "flag"
    assert config.host == "0.0.0.0" and config.source_of("host") == f"file {path}"
    assert config.roles == ("web",)


def test_unknown_key_names_key_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, "prot = 9000\n")
    with pytest.raises(ConfigError, match=rf"^{path}: prot: unknown key"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('port = "high"', "port: must be a whole number"),
        ("port = 70000", "port: must be a whole number from 1 to 65535"),
        ('database_url = "mysql://x"', "database_url: must be a postgresql:// URL"),
        ('redis_url = "http://x"', "redis_url: must be a redis://"),
        ('roles = ["web", "gpu"]', "roles: must be a non-empty list"),
        ('public_url = "ftp://x"', "public_url: must be an http"),
    ],
)
def test_wrong_types_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text))


def test_unreadable_or_invalid_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_config(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "port = = 1"))


def test_roles_from_a_flag_are_comma_separated() -> None:
    assert load_config(flags={"roles": "web, scheduler"}).roles == ("web", "scheduler")


def test_secrets_are_masked_when_shown() -> None:
    assert mask_url("postgresql://app:s3cret@db:5432/archipel") == (
        "postgresql://app:***@db:5432/archipel"
    )
    config = load_config(flags={"redis_url": "redis://:pw@cache:6379/0"})
    shown = {key: (value, source) for key, value, source in config.shown()}
    assert shown["redis_url"] == ("redis://:***@cache:6379/0", "flag")
    assert "pw" not in str(config.shown())
