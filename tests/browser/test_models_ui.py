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
        page.locator('form[data-form="assign"]').get_by_label("Reason").fill("serve it in Paris")
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


def test_add_a_library_model_edit_assign_and_retire_it(
    browser: Browser, fresh_pool: PoolProcess, artifacts: Path
) -> None:
    admin = AdminClient(fresh_pool.url)
    admin.onboard()
    sim = SimProcess(count=1).start()
    try:
        admin.post("/api/workers", {"url": sim.urls[0], "name": "gpu-0", "reason": "r"})
        page = logged_in_page(browser, fresh_pool)
        # Live before the page loads: it then sees gpu-0 go online.
        expect(page.locator("[data-live]")).to_have_attribute("data-live", "open")
        page.locator('nav a[data-section="models"]').click()
        library = page.locator('form[data-form="library"]')
        expect(library).to_contain_text("each worker pulls the model itself")
        name = library.locator(".field", has=page.locator("#library-name"))
        add = library.get_by_role("button", name="Add")

        # Bad input: the error shows beside the name, whether the form or the API finds it.
        add.click()
        expect(name.get_by_role("alert")).to_have_text("Name: this cannot be empty.")
        library.get_by_label("Name").fill("phi 3")
        add.click()
        expect(name.get_by_role("alert")).to_contain_text("lowercase letters, digits")

        library.get_by_label("Name").fill("phi3")
        library.get_by_label("Tag").fill("mini")
        library.get_by_label("code").check()
        library.get_by_label("Notes").fill("small")
        library.get_by_label("Reason").fill("a small model for the edge sites")
        add.click()
        expect(library.get_by_role("status")).to_have_text("Added as phi3:mini")
        expect(name.get_by_role("alert")).to_have_count(0)
        row = page.locator('tr[data-model="phi3:mini"]')
        expect(row).to_contain_text("chat, code")

        # Edit its capabilities and notes; they are saved (still there after a reload).
        row.get_by_role("button").click()
        edit = page.locator('form[data-form="edit"]')
        expect(edit.get_by_label("Notes")).to_have_value("small")
        edit.get_by_label("chat").uncheck()
        edit.get_by_label("embedding").check()
        edit.get_by_label("Notes").fill("3.8B parameters, for short answers")
        edit.get_by_role("button", name="Save").click()
        expect(edit.get_by_role("status")).to_have_text("Saved")
        expect(row).to_contain_text("code, embedding")
        page.reload()
        expect(row).to_contain_text("code, embedding")
        row.get_by_role("button").click()
        detail = page.locator("section.detail")
        expect(detail.locator("dl")).to_contain_text("3.8B parameters, for short answers")
        expect(edit.get_by_label("chat")).not_to_be_checked()
        expect(edit.get_by_label("embedding")).to_be_checked()

        # Any N workers with room: more than there are is refused beside the count.
        assign = page.locator('form[data-form="assign"]')
        expect(assign.get_by_label("gpu-0 (online)")).to_be_visible(timeout=10_000)
        count = assign.locator(".field", has=page.locator("#assign-count"))
        assign.get_by_label("how many workers").fill("2")
        assign.get_by_role("button", name="Assign").click()
        expect(count.get_by_role("alert")).to_contain_text("only 1 online worker(s) with room")
        page.screenshot(path=str(artifacts / "models-library-detail.png"), full_page=True)
        assign.get_by_label("how many workers").fill("1")
        assign.get_by_role("button", name="Assign").click()
        expect(detail.locator('li[data-worker="gpu-0"]')).to_be_visible()
        expect(count.get_by_role("alert")).to_have_count(0)

        # Retire: refused while assigned, with the API's sentence; done once unassigned.
        retire = page.locator('form[data-command="retire-reason"]')
        retire.get_by_role("button", name="Retire").click()
        expect(retire.get_by_role("alert")).to_contain_text("unassign it first")
        detail.locator('li[data-worker="gpu-0"]').get_by_role("button", name="Unassign").click()
        expect(detail.locator('li[data-worker="gpu-0"]')).to_have_count(0)
        retire.get_by_label("Reason").fill("replaced by a bigger model")
        retire.get_by_role("button", name="Retire").click()
        expect(detail.locator('h2 .chip[data-value="retired"]')).to_have_text("Retired")
        expect(row).to_have_count(0)
        expect(edit).to_have_count(0)
        page.screenshot(path=str(artifacts / "models-library.png"), full_page=True)
    finally:
        sim.stop()


def test_a_satellite_catalog_is_read_only_with_its_sync_state(
    browser: Browser, fresh_pool: PoolProcess, artifacts: Path
) -> None:
    admin = AdminClient(fresh_pool.url)
    admin.onboard()
    page = logged_in_page(browser, fresh_pool)
    # Live before the flag changes: a change made earlier would go unseen.
    expect(page.locator("[data-live]")).to_have_attribute("data-live", "open")
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
    expect(page.locator('form[data-form="library"]')).to_have_count(0)
    expect(page.get_by_text("its models come from the catalog master")).to_be_visible()
    page.screenshot(path=str(artifacts / "models-satellite.png"), full_page=True)

    # Back to standalone: the upload area is back, the banner gone.
    assert admin.put(flag, {"value": "", "reason": "test"}).is_success
    expect(dropzone).to_be_visible()
    expect(banner).to_have_count(0)

    # A model's detail on a satellite: no editing or retiring, assigning stays.
    added = admin.post("/api/models/library", {"name": "phi3", "tag": "mini", "reason": "r"})
    assert added.is_success
    assert admin.put(flag, {"value": "pool-elsewhere", "reason": "test"}).is_success
    expect(banner).to_be_visible()
    page.locator('tr[data-model="phi3:mini"]').get_by_role("button").click()
    expect(page.locator('form[data-form="assign"]')).to_be_visible()
    expect(page.locator('form[data-form="edit"]')).to_have_count(0)
    expect(page.locator('form[data-command="retire-reason"]')).to_have_count(0)
