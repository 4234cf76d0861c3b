"""The pages over real HTTP against the real vault: sessions, CSRF, bad input, no secret anywhere."""

from http.cookies import SimpleCookie
from urllib.parse import urlsplit

import httpx
from ui_support import API_KEY, assert_no_secret


def cookie_attributes(response: httpx.Response, name: str) -> dict[str, str]:
    for header in response.headers.get_list("set-cookie"):
        parsed = SimpleCookie(header)
        if name in parsed:
            morsel = parsed[name]
            return {"value": morsel.value, **{k: str(v) for k, v in morsel.items() if v}}
    raise AssertionError(f"no {name} cookie set")


async def sign_in(client: httpx.AsyncClient) -> None:
    response = await client.post("/admin/sign-in", data={"api_key": API_KEY})
    assert response.status_code == 303 and response.headers["location"] == "/admin/connections"


def csrf_of(html: str) -> str:
    marker = 'name="csrf_token" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


async def test_sign_in_sets_a_strict_httponly_session_without_the_key(stack):
    async with httpx.AsyncClient(base_url=stack.url) as client:
        refused = await client.post("/admin/sign-in", data={"api_key": "glk_not_a_real_key_0123456789"})
        assert refused.status_code == 401 and "not valid" in refused.text
        assert "glk_not_a_real_key" not in refused.text
        assert (await client.get("/admin/connections")).headers["location"] == "/admin/sign-in"

        response = await client.post("/admin/sign-in", data={"api_key": API_KEY})
        cookie = cookie_attributes(response, "grantline_admin")
        assert cookie["httponly"] and cookie["samesite"].lower() == "strict" and cookie["path"] == "/admin"
        assert API_KEY not in cookie["value"] and "glk_" not in cookie["value"]
        page = await client.get("/admin/connections")
        assert page.status_code == 200 and "Start a connection" in page.text
        assert "default-src 'none'" in page.headers["content-security-policy"]
        assert page.headers["cache-control"] == "no-store"
        assert_no_secret(page.text, "connections page")


async def test_posts_without_the_csrf_token_or_from_another_origin_change_nothing(stack):
    async with httpx.AsyncClient(base_url=stack.url) as client:
        await sign_in(client)
        form = await client.get("/admin/providers/sandbox/app")
        token = csrf_of(form.text)
        assert_no_secret(form.text, "provider app form")
        changed = {"client_id": "someone-else", "client_secret": "", "enabled": "on"}
        missing = await client.post("/admin/providers/sandbox/app", data=changed)
        assert missing.status_code == 422 and "expired" in missing.text
        foreign = await client.post(
            "/admin/providers/sandbox/app",
            data={**changed, "csrf_token": token},
            headers={"Origin": "https://attacker.example"},
        )
        assert foreign.status_code == 422
        async with stack.api() as api:
            app = (await api.get("/v1/provider-apps/sandbox")).json()
        assert app["client_id"] == "ui-tests-client" and app["has_client_secret"]

        # With the token: saved, and an empty secret field keeps the stored secret.
        saved = await client.post("/admin/providers/sandbox/app", data={**changed, "csrf_token": token})
        assert saved.status_code == 303
        async with stack.api() as api:
            app = (await api.get("/v1/provider-apps/sandbox")).json()
        assert app["client_id"] == "someone-else" and app["has_client_secret"]


async def test_bad_filters_get_a_clear_message(stack):
    async with httpx.AsyncClient(base_url=stack.url) as client:
        await sign_in(client)
        bad = await client.get("/admin/connections", params={"status": "nonsense"})
        assert bad.status_code == 422 and "Status is not valid" in bad.text
        bad = await client.get("/admin/audit", params={"action": "DROP TABLE"})
        assert bad.status_code == 422 and "Action is not valid" in bad.text
        missing = await client.get("/admin/connections/does-not-exist/revoke")
        assert missing.status_code == 404


async def test_connect_link_is_confirmed_by_a_post_used_once_and_drops_the_token_from_the_url(stack):
    async with stack.api() as api:
        created = (await api.post("/v1/connect-sessions", json={"user_id": "alice"})).json()
    link = urlsplit(created["connect_url"]).path + "?" + urlsplit(created["connect_url"]).query
    async with httpx.AsyncClient(base_url=stack.url) as client:
        landing = await client.get(link)
        assert landing.status_code == 303 and landing.headers["location"] == "/connect/confirm"
        assert landing.headers["referrer-policy"] == "same-origin"
        opened = cookie_attributes(landing, "grantline_connect_link")
        assert opened["httponly"] and opened["samesite"].lower() == "lax" and opened["path"] == "/connect"
        assert created["token"] not in opened["value"]
        # Opening the link signs nobody in: no connect-page session until the user confirms.
        assert "grantline_connect" not in client.cookies
        assert (await client.get("/connect")).status_code == 401
        confirm = await client.get("/connect/confirm")
        assert confirm.status_code == 200 and "Continue as alice" in confirm.text
        assert "ui-tests" in confirm.text  # the tenant's name
        assert_no_secret(confirm.text, "confirm page")
        refused = await client.post("/connect/confirm", data={"csrf_token": "forged"})
        assert refused.status_code == 422 and (await client.get("/connect")).status_code == 401

        confirmed = await client.post("/connect/confirm", data={"csrf_token": csrf_of(confirm.text)})
        assert confirmed.status_code == 303 and confirmed.headers["location"] == "/connect"
        cookie = cookie_attributes(confirmed, "grantline_connect")
        assert cookie["httponly"] and cookie["samesite"].lower() == "lax" and cookie["path"] == "/connect"
        assert created["token"] not in cookie["value"]
        home = await client.get("/connect")
        assert home.status_code == 200 and "Available" in home.text and "Sandbox" in home.text
        assert_no_secret(home.text, "connect page")
        # The connect cookie is no admin session.
        assert (await client.get("/admin/connections")).status_code == 303

    async with httpx.AsyncClient(base_url=stack.url) as second_browser:
        # Single use: the same link opens nothing a second time.
        again = await second_browser.get(link)
        assert again.headers["location"] == "/connect?expired=1"
        expired = await second_browser.get("/connect", params={"session": "glk_cs_" + "x" * 43})
        assert expired.headers["location"] == "/connect?expired=1"
        page = await second_browser.get("/connect?expired=1")
        assert page.status_code == 401 and "expired" in page.text


async def test_a_confirm_post_from_another_site_changes_nothing(stack):
    async with stack.api() as api:
        created = (await api.post("/v1/connect-sessions", json={"user_id": "alice"})).json()
    link = urlsplit(created["connect_url"]).path + "?" + urlsplit(created["connect_url"]).query
    async with httpx.AsyncClient(base_url=stack.url) as client:
        await client.get(link)
        token = csrf_of((await client.get("/connect/confirm")).text)
        foreign = await client.post(
            "/connect/confirm", data={"csrf_token": token}, headers={"Origin": "https://attacker.example"}
        )
        assert foreign.status_code == 422 and (await client.get("/connect")).status_code == 401
        # The link was not used up by the refused post.
        assert (await client.post("/connect/confirm", data={"csrf_token": token})).status_code == 303


async def test_revoking_the_api_key_ends_the_admin_session(stack):
    from sqlalchemy import update

    from grantline.auth_gateway.adapters.tables import api_keys

    async with httpx.AsyncClient(base_url=stack.url) as client:
        await sign_in(client)
        assert (await client.get("/admin/audit")).status_code in (200, 503)
        async with stack.gateway.transaction() as session:
            await session.execute(update(api_keys).values(revoked_at=api_keys.c.created_at))
        assert (await client.get("/admin/connections")).headers["location"] == "/admin/sign-in"


async def test_an_api_key_refused_by_the_form_is_never_echoed_and_nothing_is_stored(stack):
    leaked = "not-a-sandbox-key-canary-4242"
    async with httpx.AsyncClient(base_url=stack.url) as client:
        await sign_in(client)
        form = await client.get("/admin/connections/new", params={"provider": "sandbox_api_key"})
        assert form.status_code == 200 and 'name="key_api_key"' in form.text
        data = {"csrf_token": csrf_of(form.text), "provider": "sandbox_api_key", "owner": "user"}
        refused = await client.post(
            "/admin/connections/new", data={**data, "user_id": "alice", "key_api_key": leaked}
        )
        assert refused.status_code == 422 and "expected format" in refused.text
        assert leaked not in refused.text
        no_user = await client.post("/admin/connections/new", data={**data, "key_api_key": leaked})
        assert no_user.status_code == 422 and leaked not in no_user.text
    async with stack.api() as api:
        assert (await api.get("/v1/connections")).json()["connections"] == []
