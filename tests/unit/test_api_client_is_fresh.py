"""The UI's typed API client is generated from the server's OpenAPI document: never stale."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from web.openapi import openapi_document

UI = Path(__file__).resolve().parents[2] / "ui"
FIX = "run `make api-client` and commit the result"


def test_the_committed_openapi_document_is_current() -> None:
    committed = json.loads((UI / "src/lib/api/openapi.json").read_text())
    assert committed == openapi_document(), f"ui/src/lib/api/openapi.json is stale: {FIX}"


def test_the_generated_types_match_the_document(tmp_path: Path) -> None:
    generator = UI / "node_modules/.bin/openapi-typescript"
    if not generator.exists() or shutil.which("node") is None:
        pytest.fail("ui/node_modules is missing: run `make test` (it installs the UI's tools)")
    fresh = tmp_path / "schema.d.ts"
    subprocess.run(
        [str(generator), "src/lib/api/openapi.json", "-o", str(fresh)],
        cwd=UI,
        check=True,
        capture_output=True,
        timeout=120,
    )
    committed = (UI / "src/lib/api/schema.d.ts").read_text()
    assert fresh.read_text() == committed, f"ui/src/lib/api/schema.d.ts is stale: {FIX}"
