"""Doctrine: project code reads no environment variable (bootstrap file and flags only)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("domain", "application", "infrastructure", "projections", "web")
FORBIDDEN_CALLS = {"getenv", "getenvb", "putenv", "unsetenv"}
FORBIDDEN_NAMES = {"environ", "environb"}


def modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def reads_environment(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_NAMES | FORBIDDEN_CALLS:
            found.append(f"line {node.lineno}: .{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module in ("os", "posix"):
            for alias in node.names:
                if alias.name in FORBIDDEN_NAMES | FORBIDDEN_CALLS:
                    found.append(f"line {node.lineno}: from {node.module} import {alias.name}")
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN_CALLS | FORBIDDEN_NAMES:
            found.append(f"line {node.lineno}: {node.id}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "getuser"
        ):
            found.append(f"line {node.lineno}: getpass.getuser() reads $USER/$LOGNAME")
    return found


def test_the_scan_sees_every_package() -> None:
    assert len(modules()) > 20


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_reads_no_environment_variable(path: Path) -> None:
    assert reads_environment(ast.parse(path.read_text(), str(path))) == []


def test_the_scan_catches_each_way_of_reading() -> None:
    samples = [
        "import os\nos.environ['X']",
        "import os\nos.getenv('X')",
        "from os import environ\nenviron.get('X')",
        "from os import getenv\ngetenv('X')",
        "import getpass\ngetpass.getuser()",
    ]
    for sample in samples:
        assert reads_environment(ast.parse(sample)), sample
