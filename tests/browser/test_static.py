"""The built dashboard as the server sends it: history fallback, compression, headers."""

from __future__ import annotations

import re

import httpx

from tests.e2e.conftest import PoolProcess


def test_spa_paths_fall_back_to_index_and_assets_are_gzipped(fresh_pool: PoolProcess) -> None:
    index = httpx.get(f"{fresh_pool.url}/settings")  # a dashboard path, not a file
    assert index.status_code == 200
    assert '<div id="app">' in index.text
    assert index.headers["cache-control"] == "no-cache"
    assert "frame-ancestors 'none'" in index.headers["content-security-policy"]

    script = re.search(r'src="(/assets/[^"]+\.js)"', index.text)
    assert script is not None
    raw = httpx.get(f"{fresh_pool.url}{script.group(1)}", headers={"Accept-Encoding": "identity"})
    gzipped = httpx.get(f"{fresh_pool.url}{script.group(1)}", headers={"Accept-Encoding": "gzip"})
    assert gzipped.headers["content-encoding"] == "gzip"
    assert gzipped.headers["content-type"].startswith("text/javascript")
    assert "immutable" in gzipped.headers["cache-control"]
    assert int(gzipped.headers["content-length"]) < 200 * 1024  # initial JS under 200 KB gzip
    assert gzipped.text == raw.text  # httpx decodes it: same file

    # Server paths never fall back to the SPA.
    missing = httpx.get(f"{fresh_pool.url}/api/no-such-thing")
    assert missing.status_code in (403, 404)  # before onboarding, the gate answers first
    assert missing.headers["content-type"].startswith("application/json")
    assert httpx.get(f"{fresh_pool.url}/federation/v1/nothing").status_code in (403, 404)
    traversal = httpx.get(f"{fresh_pool.url}/assets/..%2F..%2Fpyproject.toml")
    assert "archipel" not in traversal.text.lower() or '<div id="app">' in traversal.text
