"""The connect widget (sdk/js/connect.js) in Chromium, on a platform page, against a real gateway.

The platform's page is served from its own origin (another port, as a front end would be); the widget
opens the connect page in a popup and resolves with the outcome the gateway posts back, or, when the
popup is blocked, takes the page through the flow and back. A hostile page that opens the same kind of
link, naming itself or claiming the platform's origin, receives nothing.
"""

from __future__ import annotations

import functools
import http.server
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fixtures.http_servers import serving
from fixtures.waiting import wait_for_async
from playwright.async_api import Browser, Page, expect
from ui_support import SANDBOX, UiStack, continue_to_the_sandbox, ui_stack

from grantline.auth_gateway.service.tenants import DEV_ALLOW_LIST, set_allow_list
from grantline.devstack.embedded import free_port

pytestmark = pytest.mark.browser

WIDGET = Path(__file__).resolve().parents[2] / "sdk" / "js" / "connect.js"
PLATFORM_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Platform</title></head><body>
<button id="connect">Connect an account</button>
<pre id="result"></pre>
<script type="module">
import { connect, outcomeFromRedirect } from "./connect.js";
window.messages = [];
window.addEventListener("message", (event) => {
  window.messages.push({ origin: event.origin, data: event.data });
});
const returned = outcomeFromRedirect();
if (returned) document.getElementById("result").textContent = JSON.stringify(returned);
document.getElementById("connect").addEventListener("click", async () => {
  const outcome = await connect(window.connectUrl);
  document.getElementById("result").textContent = JSON.stringify(outcome);
});
window.ready = true;
</script></body></html>
"""
# A page that opens a connect link itself, naming whichever origin it likes, and records messages.
HOSTILE_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Elsewhere</title></head><body>
<button id="open">Open</button>
<script>
window.messages = [];
window.addEventListener("message", (event) => {
  window.messages.push({ origin: event.origin, data: event.data });
});
document.getElementById("open").addEventListener("click", () => {
  window.opened = window.open(window.linkUrl, "x", "popup");
});
</script></body></html>
"""


@contextmanager
def static_site(directory: Path) -> Iterator[str]:
    """``directory`` served on its own loopback port: another origin than the gateway's."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    with serving(http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)) as url:
        yield url


@pytest.fixture
def platform_site(tmp_path: Path) -> Iterator[str]:
    site = tmp_path / "platform"
    site.mkdir()
    shutil.copy(WIDGET, site / "connect.js")
    (site / "index.html").write_text(PLATFORM_PAGE)
    with static_site(site) as url:
        yield url


@pytest.fixture
def hostile_site(tmp_path: Path) -> Iterator[str]:
    site = tmp_path / "hostile"
    site.mkdir()
    (site / "index.html").write_text(HOSTILE_PAGE)
    with static_site(site) as url:
        yield url


async def connect_url(stack: UiStack, user: str) -> str:
    async with stack.api() as api:
        created = await api.post("/v1/connect-sessions", json={"user_id": user})
    assert created.status_code == 201, created.text
    return str(created.json()["connect_url"])


async def connect_through_the_pages(page: Page, user: str) -> None:
    """What the user does on the connect page: confirm, choose the sandbox, approve there."""
    await continue_to_the_sandbox(page, user)
    await page.get_by_role("button", name="Approve").click()


async def platform_page(browser: Browser, site: str, link: str, *, popups_blocked: bool = False) -> Page:
    """The platform's page, loaded, with the connect link its back end would have handed it."""
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{site}/index.html")
    await page.wait_for_function("window.ready === true")
    await page.evaluate("url => { window.connectUrl = url; }", link)
    if popups_blocked:  # what a popup blocker does: window.open returns null
        await page.evaluate("window.open = () => null")
    return page


async def active_connection_ids(stack: UiStack, user: str) -> set[str]:
    async with stack.api() as api:
        listed = await api.get("/v1/connections", params={"user_id": user, "status": "active"})
    return {c["connection_id"] for c in listed.json()["connections"]}


async def test_the_widget_resolves_with_the_outcome_of_the_popup(
    nats_url, database_url, tmp_path, browser: Browser, platform_site: str
):
    async with ui_stack(nats_url, database_url, tmp_path) as stack:
        await stack.configure_sandbox_app()
        page = await platform_page(browser, platform_site, await connect_url(stack, "carol"))
        async with page.expect_popup() as opened:
            await page.click("#connect")
        popup = await opened.value
        # A message that does not come from the popup (here: the page itself) is not an outcome.
        await page.evaluate(
            "window.postMessage({type: 'grantline.connect.outcome', status: 'connected'}, '*')"
        )
        await connect_through_the_pages(popup, "carol")
        await expect(page.locator("#result")).not_to_be_empty(timeout=30_000)
        outcome = json.loads(await page.locator("#result").text_content() or "{}")
        assert outcome["status"] == "connected" and outcome["provider"] == "sandbox", outcome
        assert outcome["connection_id"] in await active_connection_ids(stack, "carol")
        await wait_for_async(popup.is_closed, timeout=10, message="the popup did not close")
        await page.context.close()


async def test_the_widget_falls_back_to_a_redirect_when_popups_are_blocked(
    nats_url, database_url, tmp_path, browser: Browser, platform_site: str
):
    async with ui_stack(nats_url, database_url, tmp_path) as stack:
        await stack.configure_sandbox_app()
        link = await connect_url(stack, "dave")
        page = await platform_page(browser, platform_site, link, popups_blocked=True)
        await page.click("#connect")
        await connect_through_the_pages(page, "dave")
        await page.wait_for_url(f"{platform_site}/index.html*")
        await expect(page.locator("#result")).not_to_be_empty(timeout=30_000)
        outcome = json.loads(await page.locator("#result").text_content() or "{}")
        assert outcome["status"] == "connected", outcome
        assert outcome["connection_id"] in await active_connection_ids(stack, "dave")
        assert "status=" not in page.url  # read, then taken out of the address bar
        await page.context.close()


async def test_a_page_of_another_origin_receives_no_outcome(
    nats_url, database_url, tmp_path, browser: Browser, platform_site: str, hostile_site: str
):
    """The attacker's page opens a connect link, naming itself or claiming the platform's origin."""
    async with ui_stack(nats_url, database_url, tmp_path) as stack:
        await stack.configure_sandbox_app()
        # Only the platform's origin is registered (not every loopback port, as for development).
        async with stack.gateway.driver_transaction() as conn:
            await set_allow_list(conn, stack.tenant_id, [platform_site])
        try:
            for user, claimed in (("erin", hostile_site), ("frank", platform_site)):
                page = await (await browser.new_context()).new_page()
                await page.goto(f"{hostile_site}/index.html")
                link = await connect_url(stack, user) + "&opener_origin=" + claimed
                await page.evaluate("url => { window.linkUrl = url; }", link)
                async with page.expect_popup() as opened:
                    await page.click("#open")
                popup = await opened.value
                await connect_through_the_pages(popup, user)
                if claimed == hostile_site:
                    # Not a registered origin: the outcome is addressed to nobody, the window stays.
                    await expect(popup.locator("#outcome")).to_have_text(
                        f"{SANDBOX} is connected. You can close this window."
                    )
                    await expect(popup.locator("#widget-outcome")).to_have_count(0)
                else:
                    # Addressed to the platform's origin, posted, and the popup closed itself; the
                    # browser does not deliver a message to a window of another origin.
                    await wait_for_async(popup.is_closed, timeout=15, message="the popup did not close")
                # The user did connect; only the outcome went nowhere.
                assert await active_connection_ids(stack, user)
                # A message posted before the close is queued by now; let the page run its queue once.
                messages = await page.evaluate(
                    "new Promise(done => setTimeout(() => done(window.messages), 0))"
                )
                assert not [m for m in messages if isinstance(m["data"], dict) and m["data"].get("type")], (
                    messages
                )
                await page.context.close()
        finally:
            async with stack.gateway.driver_transaction() as conn:
                await set_allow_list(conn, stack.tenant_id, DEV_ALLOW_LIST)
