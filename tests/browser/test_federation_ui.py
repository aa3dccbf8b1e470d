"""Federation in the browser: pair two pools from the Federation page, see the link on Topology."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.test_workers_ui import logged_in_page
from tests.e2e.admin_client import AdminClient
from tests.e2e.conftest import PoolProcess, shut_down


@pytest.fixture
def second_pool() -> Iterator[PoolProcess]:
    base = Path(tempfile.mkdtemp(prefix="archipel-ui2-", dir="/tmp"))
    pool = PoolProcess(base / "var")
    pool.start()
    yield pool
    shut_down(pool)
    shutil.rmtree(base, ignore_errors=True)


def test_pair_from_the_page_and_see_the_link(
    browser: Browser, fresh_pool: PoolProcess, second_pool: PoolProcess, artifacts: Path
) -> None:
    AdminClient(fresh_pool.url).onboard()
    other = AdminClient(second_pool.url)
    other.onboard()
    code = other.post("/api/federation/invites", {"reason": "r"}).json()["code"]

    page = logged_in_page(browser, fresh_pool)
    page.locator('nav a[data-section="federation"]').click()
    expect(page.get_by_text("No paired pool yet.")).to_be_visible()
    page.get_by_label("Its URL").fill(second_pool.url)
    page.get_by_label("Its invite code").fill("wrong-code")
    page.get_by_role("button", name="Pair", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("invite code")
    page.get_by_label("Its invite code").fill(code)
    page.get_by_role("button", name="Pair", exact=True).click()
    expect(page.locator('tr[data-status="paired"]')).to_have_count(1)
    page.screenshot(path=str(artifacts / "federation.png"), full_page=True)

    page.locator('nav a[data-section="topology"]').click()
    expect(page.locator('g.peer[data-link="healthy"]')).to_have_count(1, timeout=20_000)
    page.screenshot(path=str(artifacts / "topology-federation.png"), full_page=True)
