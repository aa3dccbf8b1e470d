"""Workers and Topology in the browser: register from the dialog, watch a worker go offline."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from tests.e2e.admin_client import PASSWORD, AdminClient
from tests.e2e.conftest import PoolProcess
from tests.e2e.sim import SimProcess, free_ports


def logged_in_page(browser: Browser, pool: PoolProcess) -> Page:
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(pool.url)
    page.get_by_label("E-mail address").fill("alice@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    return page


def onboard_with_fast_checks(pool: PoolProcess) -> AdminClient:
    admin = AdminClient(pool.url)
    admin.onboard()
    admin.put(
        "/api/settings/workers.health_check_interval_seconds",
        {"value": 2, "reason": "fast checks for the test"},
    )
    return admin


def test_register_a_worker_and_see_it_go_offline_live(
    browser: Browser, fresh_pool: PoolProcess, artifacts: Path
) -> None:
    admin = onboard_with_fast_checks(fresh_pool)
    steady = SimProcess(count=2).start()
    doomed = SimProcess().start()
    try:
        page = logged_in_page(browser, fresh_pool)
        page.locator('nav a[data-section="workers"]').click()
        expect(page.get_by_text("No worker registered yet")).to_be_visible()

        # The register dialog: an unreachable URL is refused beside the form, then a real one.
        page.get_by_role("button", name="Register a worker").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_label("URL").fill(f"http://127.0.0.1:{free_ports(1)}")
        dialog.get_by_label("Name").fill("ghost")
        dialog.get_by_label("Reason").fill("try")
        dialog.get_by_role("button", name="Register").click()
        expect(dialog.get_by_role("alert")).to_contain_text("cannot reach")
        dialog.get_by_label("URL").fill(doomed.urls[0])
        dialog.get_by_label("Name").fill("doomed-1")
        dialog.get_by_label("Labels").fill("gpu=l4, site=paris")
        dialog.get_by_label("Reason").fill("new box")
        dialog.get_by_role("button", name="Register").click()
        expect(dialog).to_be_hidden()
        for index, url in enumerate(steady.urls):
            admin.post("/api/workers", {"url": url, "name": f"steady-{index}", "reason": "r"})
        expect(page.locator('tr[data-worker="doomed-1"]')).to_have_attribute(
            "data-status", "idle", timeout=10_000
        )
        page.locator('tr[data-worker="doomed-1"] button').click()
        expect(page.get_by_text("Ollama version")).to_be_visible()
        page.screenshot(path=str(artifacts / "workers.png"), full_page=True)

        # The topology draws the pool and its workers; one goes down and turns offline live.
        page.locator('nav a[data-section="topology"]').click()
        node = page.locator('g.worker[data-name="doomed-1"]')
        expect(node).to_have_attribute("data-status", "idle", timeout=10_000)
        expect(page.locator("g.worker")).to_have_count(3)
        doomed.stop()
        expect(node).to_have_attribute("data-status", "offline", timeout=15_000)
        expect(node.locator("rect.node.offline")).to_have_count(1)  # a square, not a circle
        expect(page.locator('g.worker[data-name="steady-0"]')).to_have_attribute(
            "data-status", "idle"
        )
        page.screenshot(path=str(artifacts / "topology.png"), full_page=True)

        page.locator('nav a[data-section="overview"]').click()
        expect(page.locator('[data-kpi="workers-offline"]')).to_have_text("1")
        expect(page.locator('[data-kpi="workers-idle"]')).to_have_text("2")
    finally:
        steady.stop()
        doomed.stop()


def test_topology_stays_readable_with_300_workers(
    browser: Browser, fresh_pool: PoolProcess, artifacts: Path
) -> None:
    admin = onboard_with_fast_checks(fresh_pool)
    fleet = SimProcess(count=300).start()
    try:
        for index, url in enumerate(fleet.urls):
            created = admin.post(
                "/api/workers", {"url": url, "name": f"w{index:03}", "reason": "fleet"}
            )
            assert created.status_code == 201, created.text
        page = logged_in_page(browser, fresh_pool)
        page.locator('nav a[data-section="topology"]').click()
        expect(page.locator("g.worker")).to_have_count(300)
        # Every one of them is checked and found online (no round stalls on 300 new clients).
        expect(page.locator('g.worker[data-status="idle"]')).to_have_count(300, timeout=20_000)
        # Names and links are left out at this size; every node stays inside the drawing.
        expect(page.locator("g.worker text")).to_have_count(0)
        box = page.locator("svg.topology").bounding_box()
        assert box is not None
        for node in page.locator("g.worker").all()[::37]:
            inner = node.bounding_box()
            assert inner is not None
            assert box["x"] <= inner["x"] and inner["x"] + inner["width"] <= box["x"] + box["width"]
        page.screenshot(path=str(artifacts / "topology-300.png"), full_page=True)
    finally:
        fleet.stop()
