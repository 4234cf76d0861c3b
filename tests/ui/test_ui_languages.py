"""The pages in English and Russian: chosen by the `lang` cookie, then Accept-Language, then English;
the footer switch only ever sends the browser back to a page of this site."""

import html
from urllib.parse import quote, urlsplit

import httpx
import pytest
from playwright.async_api import expect
from test_ui_page_security import cookie_attributes, csrf_of
from ui_support import SCREENSHOTS, assert_no_secret, ui_stack

RU_SIGN_IN = "API-ключ арендатора"
EN_SIGN_IN = "Tenant API key"


async def open_connect_page(stack, client: httpx.AsyncClient, user_id: str = "alice") -> httpx.Response:
    """Open a connect link and confirm it: the browser then holds the connect-page session."""
    async with stack.api() as api:
        created = (await api.post("/v1/connect-sessions", json={"user_id": user_id})).json()
    parts = urlsplit(created["connect_url"])
    await client.get(parts.path + "?" + parts.query)
    confirm = await client.get("/connect/confirm")
    confirmed = await client.post("/connect/confirm", data={"csrf_token": csrf_of(confirm.text)})
    assert confirmed.status_code == 303
    return await client.get("/connect")


@pytest.mark.parametrize(
    ("accept_language", "lang", "expected"),
    [
        (None, "en", EN_SIGN_IN),
        ("de", "en", EN_SIGN_IN),
        ("ru", "ru", RU_SIGN_IN),
        ("ru-RU,ru;q=0.9,en;q=0.8", "ru", RU_SIGN_IN),
        ("en;q=0.3, ru;q=0.9", "ru", RU_SIGN_IN),
        ("de, ru;q=0", "en", EN_SIGN_IN),
    ],
)
async def test_the_sign_in_page_follows_accept_language(stack, accept_language, lang, expected):
    headers = {"Accept-Language": accept_language} if accept_language else {}
    async with httpx.AsyncClient(base_url=stack.url, headers=headers) as client:
        page = await client.get("/admin/sign-in")
    assert page.status_code == 200 and f'<html lang="{lang}">' in page.text and expected in page.text
    other = RU_SIGN_IN if expected == EN_SIGN_IN else EN_SIGN_IN
    assert other not in page.text


async def test_the_connect_page_in_russian_by_header_and_by_the_switch(stack):
    async with httpx.AsyncClient(base_url=stack.url) as client:
        home = await open_connect_page(stack, client)
        assert '<html lang="en">' in home.text and "Available" in home.text and "Доступно" not in home.text

        ru = await client.get("/connect", headers={"Accept-Language": "ru"})
        assert '<html lang="ru">' in ru.text and "Доступно" in ru.text and "Авторизовать" in ru.text
        assert "Sandbox" in ru.text  # provider names stay as they are
        assert_no_secret(ru.text, "Russian connect page")

        # The switch in the footer: a cookie, and back to the very page with its query.
        switch = await client.get("/ui/lang", params={"lang": "ru", "next": "/connect?done=1&x=y"})
        assert switch.status_code == 303 and switch.headers["location"] == "/connect?done=1&x=y"
        cookie = cookie_attributes(switch, "lang")
        assert cookie["value"] == "ru" and cookie["path"] == "/" and cookie["samesite"].lower() == "lax"
        page = await client.get("/connect")
        assert page.status_code == 200 and '<html lang="ru">' in page.text and "Доступно" in page.text
        # The cookie wins over the header; the session carried on through the switch.
        assert "Доступно" in (await client.get("/connect", headers={"Accept-Language": "en"})).text
        assert f'href="/ui/lang?lang=en&amp;next={quote("/connect", safe="/")}"' in page.text

        back = await client.get("/ui/lang", params={"lang": "en", "next": "/connect"})
        assert back.headers["location"] == "/connect"
        assert '<html lang="en">' in (await client.get("/connect", headers={"Accept-Language": "ru"})).text


async def test_the_admin_pages_and_their_messages_follow_the_cookie(stack):
    async with httpx.AsyncClient(base_url=stack.url, cookies={"lang": "ru"}) as client:
        page = await client.get("/admin/sign-in")
        assert '<html lang="ru">' in page.text and RU_SIGN_IN in page.text
        refused = await client.post("/admin/sign-in", data={"api_key": "glk_not_a_real_key_0123456789"})
        assert refused.status_code == 401 and "недействителен" in refused.text
        assert "glk_not_a_real_key" not in refused.text


async def test_an_unknown_lang_cookie_falls_back_without_an_error(stack):
    async with httpx.AsyncClient(base_url=stack.url, cookies={"lang": "xx<script>"}) as client:
        english = await client.get("/admin/sign-in")
        russian = await client.get("/admin/sign-in", headers={"Accept-Language": "ru"})
        unknown = await client.get("/ui/lang", params={"lang": "klingon", "next": "/admin/sign-in"})
    assert english.status_code == 200 and EN_SIGN_IN in english.text
    assert russian.status_code == 200 and RU_SIGN_IN in russian.text
    assert unknown.status_code == 303 and "set-cookie" not in unknown.headers
    assert "<script>" not in english.text


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "http:/evil.example",
        "/\t/evil.example",
        " //evil.example",
        "evil.example",
        "",
    ],
)
async def test_the_language_switch_never_redirects_off_site(stack, target):
    async with httpx.AsyncClient(base_url=stack.url) as client:
        response = await client.get("/ui/lang", params={"lang": "ru", "next": target})
    assert response.status_code == 303 and response.headers["location"] == "/admin"
    assert cookie_attributes(response, "lang")["value"] == "ru"


async def test_user_controlled_values_stay_escaped_on_a_translated_page(stack):
    hostile = '<script>alert("x")</script>'
    async with stack.api() as api:
        created = (await api.post("/v1/connect-sessions", json={"user_id": hostile})).json()
    parts = urlsplit(created["connect_url"])
    async with httpx.AsyncClient(base_url=stack.url, headers={"Accept-Language": "ru"}) as client:
        await client.get(parts.path + "?" + parts.query)
        confirm = await client.get("/connect/confirm")
    assert confirm.status_code == 200 and "Продолжить как" in confirm.text
    assert hostile not in confirm.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in confirm.text


@pytest.mark.browser
async def test_a_russian_browser_gets_russian_pages_and_the_switch_keeps_the_session(
    nats_url, database_url, tmp_path, browser
):
    async with ui_stack(nats_url, database_url, tmp_path) as stack:
        await stack.configure_sandbox_app()
        async with stack.api() as api:
            created = (await api.post("/v1/connect-sessions", json={"user_id": "bob"})).json()
        context = await browser.new_context(viewport={"width": 390, "height": 844}, locale="ru-RU")
        page = await context.new_page()
        await page.goto(created["connect_url"])
        await page.get_by_role("button", name="Продолжить как bob").click()
        await page.wait_for_url(stack.url + "/connect")
        assert await page.get_attribute("html", "lang") == "ru"
        await expect(page.get_by_role("heading", name="Доступно")).to_be_visible()
        assert_no_secret(await page.content(), "Russian connect page")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=SCREENSHOTS / "connect-ru.png", full_page=True)

        # The footer switch (a plain link: nothing inline for the CSP to block) keeps the session.
        await page.get_by_role("link", name="English").click()
        await page.wait_for_url(stack.url + "/connect")
        assert await page.get_attribute("html", "lang") == "en"
        await expect(page.get_by_role("heading", name="Available")).to_be_visible()
        await page.get_by_role("link", name="Русский").click()
        await expect(page.get_by_role("heading", name="Доступно")).to_be_visible()
        await context.close()


async def test_a_refusal_on_a_russian_page_says_what_happened_in_russian(stack):
    # The API's problem details are English; a Russian page leads with a sentence of its own for the
    # problem's code and keeps the English detail for the specifics. An English page is unchanged.
    async with httpx.AsyncClient(base_url=stack.url) as client:
        await open_connect_page(stack, client)
        english = await client.get("/connect/authorize/github")
        russian = await client.get("/connect/authorize/github", headers={"Accept-Language": "ru"})
    detail = _alert(english.text)
    assert english.status_code == russian.status_code and english.status_code >= 400
    assert detail and "Подробности" not in detail
    assert detail == "this provider is not available"  # the tenant has no GitHub app
    assert _alert(russian.text) == (
        f"Запрошенного не существует, или оно вам не принадлежит. Подробности (на английском): {detail}"
    )


def _alert(page: str) -> str:
    start = page.index('role="alert">') + len('role="alert">')
    return html.unescape(page[start : page.index("</div>", start)]).strip()
