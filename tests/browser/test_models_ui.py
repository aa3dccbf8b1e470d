"""LLM models and Distribution in the browser: drop a GGUF file, assign it, watch it deploy."""

from __future__ import annotations

import base64
from pathlib import Path

from playwright.sync_api import Browser, expect

from tests.browser.test_workers_ui import logged_in_page
from tests.e2e.admin_client import AdminClient
from tests.e2e.conftest import PoolProcess
from tests.e2e.sim import SimProcess
from tests.gguf_files import write_gguf


def test_drop_a_gguf_assign_it_and_see_it_deployed(
    browser: Browser, fresh_pool: PoolProcess, artifacts: Path, tmp_path: Path
) -> None:
    admin = AdminClient(fresh_pool.url)
    admin.onboard()
    sim = SimProcess(count=2).start()
    try:
        for index, url in enumerate(sim.urls):
            admin.post("/api/workers", {"url": url, "name": f"gpu-{index}", "reason": "r"})
        page = logged_in_page(browser, fresh_pool)
        page.locator('nav a[data-section="models"]').click()
        expect(page.get_by_text("The catalog is empty")).to_be_visible()

        # Drag and drop: a text file and a real GGUF file.
        gguf = write_gguf(tmp_path / "Tiny Llama.gguf", elements=100_000)
        files = [("notes.gguf", b"not a model at all"), (gguf.name, gguf.read_bytes())]
        transfer = page.evaluate_handle(
            """(files) => {
                const transfer = new DataTransfer();
                for (const [name, data] of files) {
                    const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
                    transfer.items.add(new File([bytes], name));
                }
                return transfer;
            }""",
            [[name, base64.b64encode(data).decode()] for name, data in files],
        )
        page.dispatch_event(".dropzone", "drop", {"dataTransfer": transfer})
        bad = page.locator('li[data-upload="notes.gguf"]')
        good = page.locator('li[data-upload="Tiny Llama.gguf"]')
        expect(good.get_by_label("Name")).to_have_value("tiny-llama")
        bad.get_by_role("button", name="Upload").click()
        expect(bad.get_by_role("alert")).to_contain_text("not a GGUF file")
        good.get_by_label("Reason").fill("first model")
        good.get_by_role("button", name="Upload").click()
        expect(good.get_by_role("status")).to_have_text("Added as tiny-llama:latest")
        row = page.locator('tr[data-model="tiny-llama:latest"]')
        expect(row).to_contain_text("llama")
        expect(row).to_contain_text("100032")

        # Assign it to one worker from its detail.
        row.get_by_role("button").click()
        page.get_by_label("gpu-0 (").check()
        page.locator("section.detail").get_by_label("Reason").fill("serve it in Paris")
        page.get_by_role("button", name="Assign", exact=True).click()
        page.screenshot(path=str(artifacts / "models.png"), full_page=True)

        # The Distribution matrix shows the cell turning deployed, live.
        page.locator('nav a[data-section="distribution"]').click()
        cell = page.locator('td[data-model="tiny-llama:latest"][data-worker="gpu-0"]')
        expect(cell).to_have_attribute("data-state", "deployed", timeout=20_000)
        expect(
            page.locator('td[data-model="tiny-llama:latest"][data-worker="gpu-1"]')
        ).to_have_attribute("data-state", "none")
        page.screenshot(path=str(artifacts / "distribution.png"), full_page=True)
    finally:
        sim.stop()


def test_a_satellite_catalog_is_read_only_with_its_sync_state(
    browser: Browser, fresh_pool: PoolProcess, artifacts: Path
) -> None:
    admin = AdminClient(fresh_pool.url)
    admin.onboard()
    page = logged_in_page(browser, fresh_pool)
    page.locator('nav a[data-section="models"]').click()
    dropzone = page.locator(".dropzone")
    expect(dropzone).to_be_visible()

    # Following a master this pool is not paired with: the banner says so, no adding here.
    flag = "/api/settings/cluster.catalog_master_pool"
    assert admin.put(flag, {"value": "pool-elsewhere", "reason": "test"}).is_success
    banner = page.get_by_role("region", name="Sync")
    expect(banner).to_contain_text("follows the catalog master pool-elsewhere")
    expect(banner).to_contain_text("not synced yet")
    expect(banner.get_by_role("alert")).to_contain_text("not paired with this pool")
    expect(dropzone).to_have_count(0)
    expect(page.get_by_text("its models come from the catalog master")).to_be_visible()
    page.screenshot(path=str(artifacts / "models-satellite.png"), full_page=True)

    # Back to standalone: the upload area is back, the banner gone.
    assert admin.put(flag, {"value": "", "reason": "test"}).is_success
    expect(dropzone).to_be_visible()
    expect(banner).to_have_count(0)
