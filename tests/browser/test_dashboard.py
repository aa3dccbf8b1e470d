"""The dashboard in a real browser: first boot to logout, as an admin would go through it."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx
from playwright.sync_api import Browser, Locator, Page, expect

from tests.e2e.admin_client import PASSWORD
from tests.e2e.conftest import PoolProcess

EMAIL = "alice@example.org"
SECTIONS = [
    "overview",
    "topology",
    "workers",
    "federation",
    "cluster-workers",
    "onboarding",
    "distribution",
    "models",
    "incidents",
    "cluster-config",
    "api",
    "license",
    "branding",
    "smtp",
    "signup",
    "advanced",
    "documentation",
]


def flag_form(page: Page, key: str) -> Locator:
    return page.locator(f'form[data-flag="{key}"]')


def sse_clients(pool: PoolProcess) -> int:
    metrics = httpx.get(f"{pool.url}/metrics").text
    match = re.search(r"^archipel_sse_clients (\d+)", metrics, re.MULTILINE)
    return int(match.group(1)) if match else -1


def onboard_through_the_wizard(page: Page, pool: PoolProcess) -> None:
    page.goto(pool.url)
    expect(page.get_by_role("heading", name="Set up this pool")).to_be_visible()
    expect(page.get_by_text("Step 1 of 8")).to_be_visible()
    page.get_by_label("E-mail address").fill(EMAIL)
    page.get_by_label("Display name").fill("Alice Admin")
    page.get_by_label("Password").fill("password123")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("alert")).to_contain_text("most common")  # beside the form
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()

    expect(page.get_by_text("Step 2 of 8")).to_be_visible()
    page.get_by_label("Pool name").fill("paris-1")
    page.get_by_label("Site").fill("Paris")
    page.get_by_role("button", name="Continue").click()

    expect(page.get_by_label("Public URL")).to_have_value(pool.url)
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("button", name="Generate the key pair").click()
    expect(page.get_by_text("Key ed25519:1")).to_be_visible()
    for _ in range(4):  # SMTP, branding, license, pairing: all optional
        page.get_by_role("button", name="Skip for now").click()
        page.wait_for_timeout(150)
    page.get_by_role("button", name="Finish setup").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def test_first_boot_to_logout(browser: Browser, fresh_pool: PoolProcess, artifacts: Path) -> None:
    alice = browser.new_context(viewport={"width": 1280, "height": 900})
    page = alice.new_page()
    onboard_through_the_wizard(page, fresh_pool)
    header = page.locator("header")
    expect(header).to_contain_text("paris-1")
    expect(header).to_contain_text("Alice Admin")
    expect(page.locator("[data-live]")).to_have_attribute("data-live", "open")

    # A wrong password shows an error and opens no session.
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Sign in to this pool")).to_be_visible()
    page.get_by_label("E-mail address").fill(EMAIL)
    page.get_by_label("Password").fill("not-my-password-1")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("wrong e-mail address or password")
    assert not [c for c in alice.cookies() if c["name"] == "archipel_session"]
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    session_cookie = next(c for c in alice.cookies() if c["name"] == "archipel_session")
    assert session_cookie["httpOnly"] and session_cookie["sameSite"] == "Strict"

    # A second browser (another admin tab elsewhere) watches Advanced settings.
    watcher = browser.new_context(viewport={"width": 1280, "height": 900})
    other = watcher.new_page()
    other.goto(f"{fresh_pool.url}/settings")
    other.get_by_label("E-mail address").fill(EMAIL)
    other.get_by_label("Password").fill(PASSWORD)
    other.get_by_role("button", name="Sign in").click()
    expect(flag_form(other, "api.rate_limit_per_minute").locator("input").first).to_have_value(
        "120"
    )

    # Alice changes a flag with a reason; a bad value is refused beside the field first.
    page.get_by_role("link", name="Advanced settings").click()
    rate = flag_form(page, "api.rate_limit_per_minute")
    rate.locator("input[type=number]").fill("0")
    rate.get_by_label("Reason for the change").fill("try zero")
    rate.get_by_role("button", name="Save").click()
    expect(rate.get_by_role("alert")).to_contain_text("must be at least 1")
    rate.locator("input[type=number]").fill("250")
    rate.get_by_label("Reason for the change").fill("")
    rate.get_by_role("button", name="Save").click()
    expect(rate.get_by_role("alert")).to_contain_text("Say why")
    rate.get_by_label("Reason for the change").fill("partner load test")
    started = time.monotonic()
    rate.get_by_role("button", name="Save").click()
    expect(rate.get_by_role("status")).to_have_text("Saved")

    # The other browser sees the new value within 2 seconds, without reloading.
    other_rate = flag_form(other, "api.rate_limit_per_minute")
    expect(other_rate.locator("input").first).to_have_value("250", timeout=2000)
    assert time.monotonic() - started < 2.5
    expect(other_rate).to_contain_text("partner load test")

    # The audit view (from Overview) shows who and why.
    page.get_by_role("link", name="Overview").click()
    page.get_by_role("link", name="Open the audit trail").click()
    row = page.locator("tr", has_text="api.rate_limit_per_minute → 250")
    expect(row).to_contain_text("partner load test")
    expect(row.locator(".actor")).to_contain_text("admin:")

    # Every section, screenshotted; those without a backend say so honestly.
    for section in SECTIONS:
        page.locator(f'nav a[data-section="{section}"]').click()
        expect(page.locator("main h1")).to_be_visible()
        page.screenshot(path=str(artifacts / f"section-{section}.png"), full_page=True)
    page.locator('nav a[data-section="license"]').click()
    expect(page.get_by_text("This section arrives with: Governance")).to_be_visible()
    page.locator('nav a[data-section="cluster-config"]').click()
    expect(flag_form(page, "cluster.failover_mode")).to_be_visible()

    # French, remembered after a reload.
    page.get_by_label("Language").select_option("fr")
    expect(page.locator("nav")).to_contain_text("Paramètres avancés")
    page.reload()
    expect(page.locator("nav")).to_contain_text("Paramètres avancés")
    page.screenshot(path=str(artifacts / "overview-fr.png"), full_page=True)
    page.get_by_label("Langue").select_option("en")

    # Logging out closes this tab's live stream (the other tab's stays).
    deadline = time.monotonic() + 5
    while sse_clients(fresh_pool) != 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sse_clients(fresh_pool) == 2
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("heading", name="Sign in to this pool")).to_be_visible()
    deadline = time.monotonic() + 5
    while sse_clients(fresh_pool) != 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sse_clients(fresh_pool) == 1
    alice.close()
    watcher.close()


def test_keyboard_navigation_and_labels(browser: Browser, fresh_pool: PoolProcess) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(fresh_pool.url)
    # The wizard renders once it has fetched the onboarding state: wait for it (CI once
    # pressed Tab before, and focus went to no field).
    page.locator("#w-email").wait_for()
    # Every control of the first screen has a label, and Tab reaches them in order.
    for control in page.locator("input, select, button").all():
        control_id = control.get_attribute("id")
        labelled = control_id and page.locator(f'label[for="{control_id}"]').count() == 1
        assert labelled or control.evaluate("el => el.tagName") == "BUTTON", control_id
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.id")
    assert focused == "w-email"
    context.close()
