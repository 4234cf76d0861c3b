"""Headless Chromium clicks through the admin UI and the end user's connect page, with real services.

Each page visited is checked for secrets (sandbox token prefixes, the client secret, the API key) in
its HTML and its URL, and a screenshot of it is written to docs/screenshots/.
"""

import pytest
from fixtures.waiting import wait_for_async
from playwright.async_api import Browser, Page, expect
from ui_support import (
    API_KEY,
    CLIENT_SECRET,
    SANDBOX,
    SCREENSHOTS,
    assert_no_secret,
    continue_to_the_sandbox,
    ui_stack,
)

pytestmark = pytest.mark.browser

DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


async def checked(page: Page, name: str | None = None) -> None:
    """No secret in the page or its URL; a screenshot when `name` is given."""
    assert_no_secret(await page.content(), f"{name or 'page'} HTML")
    assert_no_secret(page.url, f"{name or 'page'} URL")
    if name:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


async def approve_at_sandbox(page: Page) -> None:
    await expect(page.get_by_role("heading", name="Authorize ui-tests-client")).to_be_visible()
    await checked(page, "sandbox-consent")
    await page.get_by_role("button", name="Approve").click()


async def test_admin_signs_in_connects_a_user_and_revokes(nats_url, database_url, tmp_path, browser: Browser):
    async with ui_stack(nats_url, database_url, tmp_path, audit=True) as stack:
        context = await browser.new_context(viewport=DESKTOP)
        page = await context.new_page()
        await page.goto(stack.url + "/admin")
        await page.keyboard.press("Tab")
        assert await page.evaluate("document.activeElement.className") == "skip-link"
        await checked(page, "admin-sign-in")
        await page.get_by_label("Tenant API key").fill(API_KEY)
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url("**/admin/connections")
        await checked(page)

        # Add the provider app through the form (the secret is write-only).
        await page.get_by_role("link", name="Providers").click()
        await page.get_by_role("link", name=f"Add the {SANDBOX} provider app").first.click()
        await page.get_by_label("Client id").fill("ui-tests-client")
        await page.get_by_label("Client secret").fill(CLIENT_SECRET)
        # The provider's setup guide (issue 18 item 6): how to register the app, and its documentation.
        guide = page.get_by_role("region", name="How to register the app")
        await expect(guide).to_contain_text("Nothing to register")
        await expect(guide.get_by_role("link")).to_have_attribute(
            "href", "https://www.rfc-editor.org/rfc/rfc6749"
        )
        await checked(page, "admin-provider-app-form")
        await page.get_by_role("button", name="Save").click()
        await expect(page.get_by_role("status")).to_have_text(f"Saved the provider app for {SANDBOX}.")
        await expect(page.locator("#redirect-uri")).to_have_text(stack.url + "/v1/oauth/callback")
        await checked(page, "admin-providers")

        # Start a connection for a user, consent at the provider, come back to the list.
        await page.get_by_role("link", name="Connections").click()
        await page.get_by_role("link", name="Start a connection").click()
        await page.get_by_label("Provider").select_option("sandbox")
        await page.get_by_role("button", name="Next").click()
        await page.get_by_label("User id").fill("alice")
        await page.get_by_label("write Change sandbox data").check()
        await checked(page, "admin-connection-new")
        await page.get_by_role("button", name=f"Continue to {SANDBOX}").click()
        await approve_at_sandbox(page)
        await page.wait_for_url("**/admin/connections?done=connected*")
        await expect(page.get_by_role("status")).to_have_text(f"Connected {SANDBOX}.")
        row = page.locator("#connections tbody tr")
        await expect(row).to_have_count(1)
        await expect(row).to_have_attribute("data-status", "active")
        await expect(row).to_contain_text("alice")
        for description in ("See your sandbox profile", "Read sandbox data", "Change sandbox data"):
            await expect(row).to_contain_text(description)
        await checked(page, "admin-connections")
        await page.set_viewport_size(PHONE)
        await checked(page, "admin-connections-phone")
        await page.set_viewport_size(DESKTOP)

        # Revoke, with the confirmation step.
        await row.get_by_role("link", name="Revoke").click()
        await expect(page.get_by_role("button", name="Revoke connection")).to_be_visible()
        await checked(page, "admin-revoke-confirm")
        await page.get_by_role("button", name="Revoke connection").click()
        await page.wait_for_url("**/admin/connections?done=revoked*")
        await expect(page.locator("#connections tbody tr")).to_have_attribute("data-status", "revoked")
        await page.get_by_label("Status").select_option("active")
        await page.get_by_role("button", name="Filter").click()
        await expect(page.locator("#connections")).to_have_count(0)

        # The audit log shows the flow; its filter links narrow it down.
        async def revoked_record_listed() -> bool:
            await page.goto(stack.url + "/admin/audit?user=alice")
            return await page.locator("#audit code", has_text="connection.revoked").count() > 0

        await wait_for_async(revoked_record_listed, timeout=20, interval=0.5)
        await checked(page, "admin-audit")
        await page.locator("#audit a", has_text="connection.revoked").first.click()
        await expect(page.get_by_label("Action")).to_have_value("connection.revoked")
        await context.close()


async def test_end_user_connects_from_the_connect_page(nats_url, database_url, tmp_path, browser: Browser):
    async with ui_stack(nats_url, database_url, tmp_path) as stack:
        await stack.configure_sandbox_app()
        async with stack.api() as api:
            created = (await api.post("/v1/connect-sessions", json={"user_id": "bob"})).json()
        context = await browser.new_context(viewport=PHONE)
        page = await context.new_page()
        await page.goto(created["connect_url"])
        assert page.url == stack.url + "/connect/confirm"  # the token does not stay in the address bar
        await expect(page.locator("#confirm-user")).to_have_text("bob")
        await checked(page, "connect-confirm")
        await page.get_by_role("button", name="Continue as bob").click()
        await page.wait_for_url(stack.url + "/connect")
        await expect(page.locator("#available")).to_contain_text(SANDBOX)
        await checked(page, "connect-available")

        await page.get_by_role("link", name=f"Authorize {SANDBOX}").click()
        scopes = page.locator("#consent-scopes")
        await expect(scopes).to_contain_text("See your sandbox profile")
        await expect(scopes).to_contain_text("Read sandbox data")
        await checked(page, "connect-consent-summary")
        await page.get_by_role("button", name=f"Continue to {SANDBOX}").click()
        await approve_at_sandbox(page)
        await page.wait_for_url("**/connect/done?*")
        await expect(page.locator("#outcome")).to_have_text(
            f"{SANDBOX} is connected. You can close this window."
        )
        await checked(page, "connect-done")

        await page.get_by_role("link", name="See your connections").click()
        await expect(page.locator("#authorized")).to_contain_text(SANDBOX)
        await expect(page.locator('#available [data-provider="sandbox"]')).to_have_count(0)
        await checked(page, "connect-authorized")

        await page.get_by_role("link", name=f"Revoke {SANDBOX}").click()
        await page.get_by_role("button", name="Revoke").click()
        await expect(page.get_by_role("status")).to_have_text(f"Disconnected {SANDBOX}.")
        await expect(page.locator("#available")).to_contain_text(SANDBOX)
        await checked(page)
        await context.close()


async def test_a_victim_opening_the_attackers_links_connects_nothing_to_the_attacker(
    nats_url, database_url, tmp_path, browser: Browser
):
    """Login CSRF: the attacker's connect link and the attacker's authorize URL, opened by a victim."""
    async with ui_stack(nats_url, database_url, tmp_path) as stack:
        await stack.configure_sandbox_app()
        async with stack.api() as api:
            first = (await api.post("/v1/connect-sessions", json={"user_id": "mallory"})).json()
            second = (await api.post("/v1/connect-sessions", json={"user_id": "mallory"})).json()

        # The attacker starts a flow as their own user in their own browser and stops at the provider.
        attacker = await browser.new_context(viewport=DESKTOP)
        attacker_page = await attacker.new_page()
        await attacker_page.goto(first["connect_url"])
        await continue_to_the_sandbox(attacker_page, "mallory")
        await expect(attacker_page.get_by_role("heading", name="Authorize ui-tests-client")).to_be_visible()
        authorize_url = attacker_page.url
        await attacker.close()

        victim = await browser.new_context(viewport=DESKTOP)
        page = await victim.new_page()
        # 1. The attacker's authorize URL: the victim approves at the provider, the callback refuses.
        await page.goto(authorize_url)
        await approve_at_sandbox(page)
        await page.wait_for_url("**/connect/done?*")
        await expect(page.locator("#outcome")).to_contain_text("was not connected")
        await expect(page.locator("#other-browser")).to_be_visible()
        await checked(page, "connect-other-browser")

        # 2. The attacker's connect link: it names the attacker's user and signs the victim in as nobody.
        await page.goto(second["connect_url"])
        await expect(page.locator("#confirm-user")).to_have_text("mallory")
        await page.goto(stack.url + "/connect")
        await expect(page.get_by_text("This link has expired")).to_be_visible()
        await victim.close()

        async with stack.api() as api:
            listed = (await api.get("/v1/connections", params={"user_id": "mallory"})).json()
        assert listed["connections"] == []


async def test_end_user_adds_a_second_account_and_chooses_the_default(
    nats_url, database_url, tmp_path, browser: Browser
):
    async with ui_stack(nats_url, database_url, tmp_path) as stack:
        await stack.configure_sandbox_app()
        async with stack.api() as api:
            created = (await api.post("/v1/connect-sessions", json={"user_id": "bob"})).json()
        context = await browser.new_context(viewport=DESKTOP)
        page = await context.new_page()
        signed_in_as = {"account": "bob-work"}

        async def as_account(route):
            # The sandbox user the browser is signed in to the provider as: added to the provider
            # redirect the gateway answers with (redirected requests are not routed themselves).
            response = await route.fetch(max_redirects=0)
            headers = dict(response.headers)
            if "location" in headers:
                headers["location"] += f"&sandbox_user={signed_in_as['account']}"
            await route.fulfill(response=response, headers=headers)

        await page.route(f"{stack.url}/connect/authorize/sandbox", as_account)
        await page.goto(created["connect_url"])
        await page.get_by_role("button", name="Continue as bob").click()
        await page.wait_for_url(stack.url + "/connect")
        await page.get_by_role("link", name=f"Authorize {SANDBOX}").click()
        await page.get_by_role("button", name=f"Continue to {SANDBOX}").click()
        await approve_at_sandbox(page)
        await page.wait_for_url("**/connect/done?*")
        await page.get_by_role("link", name="See your connections").click()

        signed_in_as["account"] = "bob-home"
        await page.get_by_role("link", name=f"Add another {SANDBOX} account").click()
        await page.get_by_role("button", name=f"Continue to {SANDBOX}").click()
        await approve_at_sandbox(page)
        await page.wait_for_url("**/connect/done?*")
        await page.get_by_role("link", name="See your connections").click()

        rows = page.locator("#authorized li[data-connection]")
        await expect(rows).to_have_count(2)
        await expect(rows.nth(0)).to_contain_text("bob-work")
        await expect(rows.nth(0)).to_contain_text("Used by default")
        await expect(rows.nth(1)).to_contain_text("bob-home")
        await checked(page, "connect-several-accounts")

        await page.get_by_role("button", name=f"Use {SANDBOX} (bob-home) by default").click()
        await expect(page.get_by_role("status")).to_have_text(
            f"Apps now use this {SANDBOX} account by default."
        )
        await expect(rows.nth(0)).to_contain_text("bob-home")
        await expect(rows.nth(0)).to_contain_text("Used by default")
        async with stack.api() as api:
            listed = (await api.get("/v1/connections", params={"user_id": "bob"})).json()["connections"]
        assert {c["account"]: c["is_default"] for c in listed} == {"bob-work": False, "bob-home": True}
        await checked(page)
        await context.close()


async def test_end_user_adds_scopes_then_revokes_and_removes(
    nats_url, database_url, tmp_path, browser: Browser
):
    async with ui_stack(nats_url, database_url, tmp_path) as stack:
        await stack.configure_sandbox_app()
        async with stack.api() as api:
            created = (await api.post("/v1/connect-sessions", json={"user_id": "carol"})).json()
        context = await browser.new_context(viewport=DESKTOP)
        page = await context.new_page()
        await page.goto(created["connect_url"])
        await continue_to_the_sandbox(page, "carol")
        await approve_at_sandbox(page)
        await page.get_by_role("link", name="See your connections").click()

        await page.get_by_role("link", name=f"Add scopes to {SANDBOX}").click()
        await expect(page.locator("#granted-scopes")).to_contain_text("Read sandbox data")
        await expect(page.locator("#new-scopes")).to_contain_text("Change sandbox data")
        await expect(page.locator("#new-scopes")).not_to_contain_text("Read sandbox data")
        await checked(page, "connect-add-scopes")
        await page.get_by_label("Change sandbox data").check()
        await page.get_by_role("button", name="Review").click()
        summary = page.locator("#consent-scopes")
        await expect(summary).to_have_text("Change sandbox data write")  # only what is new
        await page.get_by_role("button", name=f"Continue to {SANDBOX}").click()
        await approve_at_sandbox(page)
        await page.wait_for_url("**/connect/done?*")
        async with stack.api() as api:
            (connection,) = (await api.get("/v1/connections", params={"user_id": "carol"})).json()[
                "connections"
            ]
        assert set(connection["scopes"]) == {"profile", "read", "write"}

        await page.get_by_role("link", name="See your connections").click()
        await page.get_by_role("link", name=f"Revoke {SANDBOX}").click()
        await page.get_by_role("button", name="Revoke").click()
        await expect(page.locator("#revoked")).to_contain_text(SANDBOX)
        await checked(page, "connect-revoked")
        await page.get_by_role("button", name=f"Remove {SANDBOX}").click()
        await expect(page.get_by_role("status")).to_have_text(f"Removed {SANDBOX}.")
        await expect(page.locator("#revoked")).to_have_count(0)
        async with stack.api() as api:
            assert (await api.get("/v1/connections", params={"user_id": "carol"})).json()["connections"] == []
        await checked(page)
        await context.close()


async def test_admin_adds_scopes_to_a_connection_and_removes_it_once_revoked(
    nats_url, database_url, tmp_path, browser: Browser
):
    async with ui_stack(nats_url, database_url, tmp_path) as stack:
        await stack.configure_sandbox_app()
        context = await browser.new_context(viewport=DESKTOP)
        page = await context.new_page()
        await page.goto(stack.url + "/admin")
        await page.get_by_label("Tenant API key").fill(API_KEY)
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url("**/admin/connections")
        await page.get_by_role("link", name="Start a connection").click()
        await page.get_by_label("Provider").select_option("sandbox")
        await page.get_by_role("button", name="Next").click()
        await page.get_by_label("User id").fill("dave")
        await page.get_by_role("button", name=f"Continue to {SANDBOX}").click()
        await approve_at_sandbox(page)
        await page.wait_for_url("**/admin/connections?done=connected*")
        row = page.locator("#connections tbody tr")
        await expect(row).not_to_contain_text("Change sandbox data")

        await row.get_by_role("link", name="Add scopes").click()
        await expect(page.get_by_label("read Read sandbox data (already granted)")).to_be_disabled()
        await page.get_by_label("write Change sandbox data").check()
        await checked(page, "admin-add-scopes")
        await page.get_by_role("button", name=f"Continue to {SANDBOX}").click()
        await approve_at_sandbox(page)
        await page.wait_for_url("**/admin/connections?done=connected*")
        await expect(row).to_have_count(1)
        await expect(row).to_contain_text("Change sandbox data")

        await row.get_by_role("link", name="Revoke").click()
        await page.get_by_role("button", name="Revoke connection").click()
        await page.wait_for_url("**/admin/connections?done=revoked*")
        await row.get_by_role("button", name="Remove").click()
        await page.wait_for_url("**/admin/connections?done=removed*")
        await expect(page.get_by_role("status")).to_have_text(f"Removed the {SANDBOX} connection.")
        await expect(page.locator("#connections tbody tr")).to_have_count(0)
        await checked(page)
        await context.close()


async def test_admin_starts_a_named_connection_with_its_own_site(
    nats_url, database_url, tmp_path, browser: Browser
):
    async with ui_stack(nats_url, database_url, tmp_path) as stack:
        async with stack.api() as api:
            saved = await api.put(
                "/v1/provider-apps/sandbox_atlassian",
                json={"client_id": "ui-tests-client", "client_secret": CLIENT_SECRET},
            )
            assert saved.status_code == 200, saved.text
        context = await browser.new_context(viewport=DESKTOP)
        page = await context.new_page()
        await page.goto(stack.url + "/admin")
        await page.get_by_label("Tenant API key").fill(API_KEY)
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url("**/admin/connections")
        await page.goto(stack.url + "/admin/connections/new?provider=sandbox_atlassian")
        await page.get_by_label("User id").fill("erin")
        await page.get_by_label("Connection name").fill("Lab site")
        await page.get_by_label("Site URL").fill("https://evil.example")
        await page.get_by_role("button", name="Continue to Sandbox (Atlassian)").click()
        await expect(page.locator(".error, [role=alert]").first).to_contain_text("site_url")
        await page.get_by_label("Site URL").fill("https://sandbox-user-lab.atlassian.net")
        await checked(page, "admin-connection-settings")
        await page.get_by_role("button", name="Continue to Sandbox (Atlassian)").click()
        await page.wait_for_url("**/admin/connections?done=connected*")
        async with stack.api() as api:
            (connection,) = (await api.get("/v1/connections", params={"user_id": "erin"})).json()[
                "connections"
            ]
        assert connection["name"] == "Lab site"
        assert connection["settings"]["site_url"] == "https://sandbox-user-lab.atlassian.net"
        assert connection["settings"]["cloud_id"]
        await context.close()


async def test_end_user_connects_a_chosen_site_from_the_connect_page(
    nats_url, database_url, tmp_path, browser: Browser
):
    atlassian = "Sandbox (Atlassian)"
    async with ui_stack(nats_url, database_url, tmp_path) as stack:
        async with stack.api() as api:
            saved = await api.put(
                "/v1/provider-apps/sandbox_atlassian",
                json={"client_id": "ui-tests-client", "client_secret": CLIENT_SECRET},
            )
            assert saved.status_code == 200, saved.text
            created = (await api.post("/v1/connect-sessions", json={"user_id": "frank"})).json()
        context = await browser.new_context(viewport=PHONE)
        page = await context.new_page()
        await page.goto(created["connect_url"])
        await page.get_by_role("button", name="Continue as frank").click()
        await page.get_by_role("link", name=f"Authorize {atlassian}").click()
        await page.get_by_label("Site URL").fill("https://sandbox-user-lab.atlassian.net")
        await page.get_by_label("A name for it").fill("Lab")
        await checked(page, "connect-consent-settings")
        await page.get_by_role("button", name=f"Continue to {atlassian}").click()
        await page.wait_for_url("**/connect/done?*")
        await expect(page.locator("#outcome")).to_have_text(
            f"{atlassian} is connected. You can close this window."
        )
        async with stack.api() as api:
            (connection,) = (await api.get("/v1/connections", params={"user_id": "frank"})).json()[
                "connections"
            ]
        assert connection["name"] == "Lab"
        assert connection["settings"]["site_url"] == "https://sandbox-user-lab.atlassian.net"
        await context.close()


async def test_admin_stores_an_api_key_connection(nats_url, database_url, tmp_path, browser: Browser):
    """Issue 18 item 4: the admin UI takes API keys (write-only), for a user or shared by the workspace."""
    async with ui_stack(nats_url, database_url, tmp_path) as stack:
        key = stack.sandbox.state.issue_api_key("alice").value
        context = await browser.new_context(viewport=DESKTOP)
        page = await context.new_page()
        await page.goto(stack.url + "/admin")
        await page.get_by_label("Tenant API key").fill(API_KEY)
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url("**/admin/connections")
        await page.get_by_role("link", name="Start a connection").click()
        await page.get_by_label("Provider").select_option("sandbox_api_key")
        await page.get_by_role("button", name="Next").click()
        await page.get_by_label("User id").fill("alice")
        await page.get_by_label("API key").fill(key)
        await checked(page, "admin-connection-api-key")
        await page.get_by_role("button", name="Store the key").click()
        await page.wait_for_url("**/admin/connections?done=connected*")
        row = page.locator("#connections tbody tr")
        await expect(row).to_have_count(1)
        await expect(row).to_have_attribute("data-status", "active")
        await expect(row).to_contain_text("alice")
        await checked(page)
        await context.close()


async def test_end_user_adds_an_api_key_from_the_connect_page(
    nats_url, database_url, tmp_path, browser: Browser
):
    """Issue 18 item 4: the connect page takes API keys too, for the session's own user only."""
    async with ui_stack(nats_url, database_url, tmp_path) as stack:
        key = stack.sandbox.state.issue_api_key("dora").value
        async with stack.api() as api:
            created = (await api.post("/v1/connect-sessions", json={"user_id": "dora"})).json()
        context = await browser.new_context(viewport=PHONE)
        page = await context.new_page()
        await page.goto(created["connect_url"])
        await page.get_by_role("button", name="Continue as dora").click()
        await page.wait_for_url(stack.url + "/connect")
        await page.get_by_role("link", name="Add your Sandbox (API key) key").click()
        await expect(page.get_by_role("heading", name="Add your Sandbox (API key) key")).to_be_visible()
        await page.get_by_label("API key").fill(key)
        await checked(page, "connect-key")
        await page.get_by_role("button", name="Save the key").click()
        await page.wait_for_url("**/connect/done?*")
        await page.get_by_role("link", name="See your connections").click()
        await expect(page.locator("#authorized")).to_contain_text("Sandbox (API key)")
        await checked(page)
        async with stack.api() as api:
            listed = (await api.get("/v1/connections", params={"user_id": "dora"})).json()["connections"]
        assert [c["provider"] for c in listed] == ["sandbox_api_key"]
        await context.close()
