"""Incidents, SMTP, notifications and automations in the browser, as an admin on call uses them."""

from __future__ import annotations

import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from playwright.sync_api import Browser, Page, expect

from tests.browser.test_workers_ui import logged_in_page
from tests.e2e.admin_client import AdminClient
from tests.e2e.conftest import PoolProcess, shut_down
from tests.e2e.sim import SimProcess, free_ports
from tests.e2e.test_operations import deploy, library_model, online, register

SMTP_PASSWORD = "relay-secret-93"  # must never reach the browser


@pytest.fixture(scope="module")
def pool() -> Iterator[PoolProcess]:
    base = Path(tempfile.mkdtemp(prefix="archipel-ui-", dir="/tmp"))
    started = PoolProcess(base / "var")
    started.start()
    AdminClient(started.url).onboard()
    yield started
    shut_down(started)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def admin(pool: PoolProcess) -> Iterator[AdminClient]:
    client = AdminClient(pool.url)
    assert client.login("alice@example.org").status_code == 200
    yield client
    client.close()


@pytest.fixture(scope="module")
def page(browser: Browser, pool: PoolProcess) -> Iterator[Page]:
    opened = logged_in_page(browser, pool)
    yield opened
    opened.context.close()


class SmtpSink:
    """An aiosmtpd handler that accepts every message and keeps the credentials it was given."""

    def __init__(self) -> None:
        self.logins: list[tuple[str, str]] = []

    def authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        self.logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return "250 2.0.0 Ok: queued as SINK42"


@pytest.fixture(scope="module")
def smtp_sink() -> Iterator[tuple[int, SmtpSink]]:
    sink = SmtpSink()
    port = free_ports(1)
    controller = Controller(
        sink,
        hostname="127.0.0.1",
        port=port,
        authenticator=sink.authenticate,
        auth_require_tls=False,
    )
    controller.start()
    yield port, sink
    controller.stop()


def test_open_acknowledge_comment_and_resolve_an_incident(page: Page, artifacts: Path) -> None:
    page.locator('nav a[data-section="incidents"]').click()
    expect(page.locator("main h1")).to_have_text("Incidents & Migrations")
    expect(page.get_by_text("No incident recorded")).to_be_visible()

    # Opened by hand from the dialog; a title is required, said beside the field.
    page.get_by_role("button", name="Open an incident").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Open", exact=True).click()
    expect(dialog.get_by_role("alert")).to_contain_text("cannot be empty")
    dialog.get_by_label("Title").fill("GPU fans loud on rack 3")
    dialog.get_by_label("What happened").fill("Noise reported by the site team.")
    dialog.get_by_label("Severity").select_option("critical")
    dialog.get_by_role("button", name="Open", exact=True).click()
    expect(dialog).to_be_hidden()
    row = page.locator('tr[data-incident="GPU fans loud on rack 3"]')
    expect(row).to_have_attribute("data-status", "open")
    expect(page.locator('[data-count="open"]')).to_have_text("1")
    detail = page.locator("section.detail")
    expect(detail.locator('li[data-kind="opened"]')).to_have_count(1)

    # Acknowledge, with a reason.
    detail.get_by_role("button", name="Acknowledge").click()
    detail.locator('form[data-command="incident-acknowledge"] input').fill("looking at it")
    detail.locator('form[data-command="incident-acknowledge"] button[type=submit]').click()
    expect(row).to_have_attribute("data-status", "acknowledged")
    expect(detail.locator('li[data-kind="acknowledged"]')).to_have_count(1)

    # Assign it to the only admin.
    detail.get_by_role("button", name="Assign").click()
    assign = detail.locator('form[data-command="incident-assign"]')
    assign.get_by_label("Assigned to").select_option(label="Alice Admin")
    assign.locator("button[type=submit]").click()
    expect(detail.locator("[data-assignee]")).to_have_text("Alice Admin")

    # A comment.
    detail.get_by_role("button", name="Comment", exact=True).click()
    comment = detail.locator('form[data-command="incident-comment"]')
    comment.get_by_label("Comment").fill("Fan 2 replaced.")
    comment.locator("button[type=submit]").click()
    expect(detail.locator('li[data-kind="commented"]')).to_contain_text("Fan 2 replaced.")

    # Resolving needs a resolution: refused beside the field, then accepted.
    detail.get_by_role("button", name="Resolve").click()
    resolve = detail.locator('form[data-command="incident-resolve"]')
    resolve.locator("button[type=submit]").click()
    expect(resolve.get_by_role("alert")).to_contain_text("cannot be empty")
    resolve.get_by_label("Resolution").fill("Fans replaced, noise gone.")
    resolve.locator("button[type=submit]").click()
    expect(row).to_have_attribute("data-status", "resolved")
    expect(detail.locator('li[data-kind="resolved"]')).to_contain_text("Fans replaced")
    kinds = detail.locator(".timeline li").evaluate_all("items => items.map(i => i.dataset.kind)")
    assert kinds[0] == "opened" and kinds[-1] == "resolved"
    assert {"acknowledged", "assigned", "commented"} <= set(kinds)
    expect(page.locator('[data-count="resolved"]')).to_have_text("1")
    expect(page.get_by_text("No migration yet")).to_be_visible()
    page.screenshot(path=str(artifacts / "incidents.png"), full_page=True)


def test_smtp_server_test_mail_and_recipients(
    page: Page, admin: AdminClient, smtp_sink: tuple[int, SmtpSink], artifacts: Path
) -> None:
    port, sink = smtp_sink
    page.locator('nav a[data-section="smtp"]').click()
    expect(page.get_by_text("No mail server yet")).to_be_visible()

    # The server, with a password that is stored but never shown again.
    page.get_by_label("Host").fill("127.0.0.1")
    page.get_by_label("Port").fill(str(port))
    page.get_by_label("Security").select_option("none")
    page.get_by_label("User name").fill("archipel")
    page.get_by_label("Password", exact=True).fill(SMTP_PASSWORD)
    page.get_by_label("Sender address").fill("archipel@example.org")
    page.get_by_role("button", name="Save the server").click()
    expect(page.locator('[data-password-set="true"]')).to_be_visible()
    expect(page.get_by_label("Password", exact=True)).to_have_value("")
    expect(page.get_by_text("Leave empty to keep the current password")).to_be_visible()
    assert SMTP_PASSWORD not in page.content()
    server = admin.get("/api/smtp").json()
    assert server["password_set"] is True and "password" not in server

    # A test e-mail: the server's answer, as it gave it.
    page.get_by_label("Send a test e-mail to").fill("ops@example.org")
    page.get_by_role("button", name="Send a test e-mail").click()
    answer = page.locator("[data-ok]")
    expect(answer).to_have_attribute("data-ok", "true", timeout=15_000)
    expect(answer).to_contain_text("SINK42")
    assert sink.logins == [("archipel", SMTP_PASSWORD)]  # the stored password, used

    # Recipients: a bad address is refused beside the list, then a good one is kept.
    recipients = page.locator("section", has_text="Notification recipients")
    recipients.get_by_role("button", name="Add a recipient").click()
    address = page.locator("tr[data-recipient] input[type=email]").last
    address.fill("not-an-address")
    page.get_by_role("button", name="Save the recipients").click()
    expect(recipients.get_by_role("alert")).to_contain_text("not-an-address")
    address.fill("oncall@example.org")
    page.get_by_label("oncall@example.org: Migrations").uncheck()
    page.get_by_role("button", name="Save the recipients").click()
    expect(recipients.get_by_role("status")).to_have_text("Saved")
    saved = admin.get("/api/notifications/recipients").json()["items"]
    assert [(r["address"], set(r["kinds"])) for r in saved] == [
        ("oncall@example.org", {"incident", "escalation"})
    ]
    page.screenshot(path=str(artifacts / "smtp.png"), full_page=True)


def test_the_bell_counts_unread_notifications_live(
    page: Page, admin: AdminClient, artifacts: Path
) -> None:
    bell = page.get_by_role("button", name=re.compile(r"^Notifications"))
    if page.locator("header [data-unread]").count():
        bell.click()
        page.get_by_role("button", name="Mark all read").click()
        expect(page.locator("header [data-unread]")).to_have_count(0)
        bell.click()

    # A flag change raises a notification: the count appears without a reload.
    changed = admin.put(
        "/api/settings/api.rate_limit_per_minute", {"value": 300, "reason": "bell test"}
    )
    assert changed.status_code == 200, changed.text
    expect(page.locator("header [data-unread]")).to_be_visible(timeout=5000)
    bell.click()
    panel = page.get_by_role("region", name="Notifications")
    expect(panel.locator("li.unread")).not_to_have_count(0)
    page.screenshot(path=str(artifacts / "notifications.png"))
    panel.get_by_role("button", name="Mark all read").click()
    expect(page.locator("header [data-unread]")).to_have_count(0)
    expect(panel.locator("li.unread")).to_have_count(0)
    page.keyboard.press("Escape")
    expect(panel).to_be_hidden()


def test_order_a_move_and_watch_its_steps(page: Page, admin: AdminClient, artifacts: Path) -> None:
    for key, value in (
        ("workers.health_check_interval_seconds", 2),
        ("cluster.balancer_enabled", False),  # nothing else moves models meanwhile
    ):
        assert admin.put(f"/api/settings/{key}", {"value": value, "reason": "ui test"}).is_success
    sim = SimProcess(count=2).start()
    try:
        source, target = (register(admin, url, f"gpu-{i}") for i, url in enumerate(sim.urls))
        online(admin, source, target)
        model = library_model(admin, "gemma2", "2b")
        deploy(admin, model, source)

        page.locator('nav a[data-section="incidents"]').click()
        move = page.locator("form", has=page.get_by_role("heading", name="Move a model"))

        def order_move(not_before: str) -> None:
            move.get_by_label("Model").select_option(label="gemma2:2b")
            sources = move.get_by_label("From worker").locator("option")
            expect(sources).to_have_count(2)  # "Choose…" and the one holding the model
            move.get_by_label("From worker").select_option(label="gpu-0")
            move.get_by_label("To worker").select_option(label="gpu-1")
            move.get_by_label("Not before").fill(not_before)
            move.get_by_role("button", name="Order the move").click()
            expect(move.get_by_role("status")).to_have_text("Migrations ordered: 1.")

        # Not before a far date: it waits, and can be cancelled.
        order_move("2099-01-01T08:00")
        waiting = page.locator('tr[data-migration="gemma2:2b"][data-status="pending"]')
        waiting.get_by_role("button", name="Cancel the migration").click()
        page.locator('form[data-command="migration-cancel"] input').fill("not this year")
        page.locator('form[data-command="migration-cancel"] button[type=submit]').click()
        expect(
            page.locator('tr[data-migration="gemma2:2b"][data-status="cancelled"]')
        ).to_have_count(1)

        # Without a date it runs at once; the list follows its steps live.
        order_move("")
        done = page.locator('tr[data-migration="gemma2:2b"][data-status="completed"]')
        expect(done).to_have_count(1, timeout=60_000)
        expect(done.locator('li[data-step="deploy"]')).to_have_attribute("data-status", "done")
        expect(done.locator('li[data-step="remove"]')).to_have_attribute("data-status", "done")
        page.screenshot(path=str(artifacts / "migrations.png"), full_page=True)
    finally:
        sim.stop()


def test_automations_show_their_state_and_switch(
    page: Page, admin: AdminClient, artifacts: Path
) -> None:
    page.locator('nav a[data-section="automations"]').click()
    expect(page.locator("main h1")).to_have_text("Automations")
    # The failover mode on top; flags shared by automations are edited once on the page.
    expect(page.locator('form[data-flag="cluster.failover_mode"]')).to_have_count(1)
    expect(page.locator('[data-shared="cluster.failover_mode"]')).not_to_have_count(0)
    listed = admin.get("/api/automations").json()["items"]
    expect(page.locator("article[data-automation]")).to_have_count(len(listed))

    # Those arriving later show their switch, disabled.
    for automation in (a for a in listed if not a["available"]):
        card = page.locator(f'article[data-automation="{automation["id"]}"]')
        expect(card.get_by_role("note")).to_be_visible()
        if automation["switch_flag"]:
            expect(card.locator("input[role=switch]")).to_be_disabled()

    # Flip the first available switch, with a reason; the card follows.
    target = next(a for a in listed if a["available"] and a["switch_flag"])
    card = page.locator(f'article[data-automation="{target["id"]}"]')
    switch = card.locator(f'form[data-flag="{target["switch_flag"]}"]')
    switch.locator("input[role=switch]").click()
    switch.get_by_label("Reason for the change").fill("browser test")
    switch.get_by_role("button", name="Save").click()
    expect(switch.get_by_role("status")).to_have_text("Saved")
    expect(card.locator("header .chip")).to_have_attribute(
        "data-value", "off" if target["enabled"] else "on"
    )
    after = next(
        a for a in admin.get("/api/automations").json()["items"] if a["id"] == target["id"]
    )
    assert after["enabled"] is not target["enabled"]
    page.screenshot(path=str(artifacts / "automations.png"), full_page=True)
