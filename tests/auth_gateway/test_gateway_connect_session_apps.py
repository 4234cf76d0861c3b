"""A connect session (or a runner's connect link) may send new connections of a provider through one
of the tenant's named provider apps (`provider_apps`). The tenant chooses, when it mints the session;
the end user holding the session cannot pick another app, nor the default one instead. A tenant whose
only app for a provider is a named one can so offer that provider on the connect page."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from gateway_flow import (
    RETURN_TO,
    authorize,
    callback,
    confirm_connect_link,
    put_named_app,
    query,
    setup_app,
)
from gateway_support import KEY_A, KEY_B, Stack, bearer, new_user
from nats.aio.client import Client
from sqlalchemy import text

from grantline.contract.errors import ErrorCode
from grantline.runner import ResolveError, RunnerClient

SHOP_B_CLIENT = "shop-b-session-client"
SHOP_B_SECRET = "sbx_secret_shop_b_session_0123456789"


async def put_shop_b(stack: Stack, name: str = "shop-b", key: str = KEY_A) -> None:
    await put_named_app(stack, name, SHOP_B_CLIENT, SHOP_B_SECRET, key=key)


async def mint(stack: Stack, user: str, key: str = KEY_A, **extra: Any) -> Any:
    return await stack.client.post(
        "/v1/connect-sessions", headers=bearer(key), json={"user_id": user, **extra}
    )


async def initiate(stack: Stack, token: str, user: str, **extra: Any) -> Any:
    return await stack.client.post(
        "/v1/connections/initiate",
        headers=bearer(token),
        json={"user_id": user, "provider": "sandbox", "return_to": RETURN_TO, **extra},
    )


async def sessions_minted(stack: Stack) -> int:
    async with stack.runtime.sessions() as session:
        return int(await session.scalar(text("SELECT count(*) FROM gateway.connect_sessions")) or 0)


async def test_a_session_pinned_to_a_named_app_connects_through_it(stack):
    # The tenant has no default sandbox app: only its named one.
    await put_shop_b(stack)
    user = new_user()
    minted = await mint(stack, user, provider_apps={"sandbox": "shop-b"})
    assert minted.status_code == 201, minted.text
    token = minted.json()["token"]

    catalogue = (await stack.client.get("/v1/providers", headers=bearer(token))).json()
    [sandbox] = [p for p in catalogue["providers"] if p["id"] == "sandbox"]
    assert sandbox["configured"] is True

    started = await initiate(stack, token, user)
    assert started.status_code == 200, started.text
    assert query(started.json()["authorize_url"])["client_id"] == SHOP_B_CLIENT
    outcome = await callback(stack, await authorize(stack, started.json()["authorize_url"]))
    assert outcome["status"] == "connected", outcome
    shown = await stack.client.get(
        f"/v1/connections/{started.json()['connection_id']}", headers=bearer(KEY_A)
    )
    assert shown.json()["provider_app"] == "shop-b"


async def test_the_end_user_cannot_choose_another_app_than_the_tenant_did(stack):
    await setup_app(stack)
    await put_shop_b(stack)
    user = new_user()
    # Pinned to the named app: the default one cannot be asked for instead, nor another name.
    pinned = (await mint(stack, user, provider_apps={"sandbox": "shop-b"})).json()["token"]
    for other in ("default-app", "shop-c"):
        refused = await initiate(stack, pinned, user, provider_app=other)
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden", refused.text
    # Not pinned: the user's connections use the default app, and naming the tenant's other app
    # (which may hold wider scopes or belong to another of its customers) is refused.
    plain = (await mint(stack, user)).json()["token"]
    refused = await initiate(stack, plain, user, provider_app="shop-b")
    assert refused.status_code == 403, refused.text
    allowed = await initiate(stack, plain, user)
    assert query(allowed.json()["authorize_url"])["client_id"] != SHOP_B_CLIENT
    # The tenant's own key still chooses freely.
    chosen = await initiate(stack, KEY_A, user, provider_app="shop-b")
    assert query(chosen.json()["authorize_url"])["client_id"] == SHOP_B_CLIENT


async def test_a_session_naming_an_app_it_cannot_use_is_refused_and_mints_nothing(stack):
    await put_shop_b(stack)
    await put_shop_b(stack, "theirs", key=KEY_B)
    user = new_user()
    before = await sessions_minted(stack)
    cases = [
        # Another tenant's app, by its name.
        ({"provider_apps": {"sandbox": "theirs"}}, 422),
        ({"provider_apps": {"sandbox": "no-such-app"}}, 422),
        # A pinned provider the session may not connect.
        ({"providers": ["github"], "provider_apps": {"sandbox": "shop-b"}}, 422),
        ({"provider_apps": {"sandbox": "Not A Name"}}, 422),
        ({"provider_apps": {"no such provider": "shop-b"}}, 422),
        ({"providers": ["no-such-provider"]}, 404),
        # More scope than the connect page's cookie can carry (browsers cap a cookie at 4 KB).
        ({"providers": [f"p{i:02d}" + "x" * 61 for i in range(32)]}, 422),
    ]
    for body, status in cases:
        refused = await mint(stack, user, **body)
        assert refused.status_code == status, (body, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
    assert await sessions_minted(stack) == before


async def test_a_runners_connect_link_offers_the_provider_through_the_named_app(
    full_stack, nats_client: Client
):
    await put_shop_b(full_stack)
    user = new_user()
    runner = RunnerClient(nats_client, timeout=10)
    try:
        link = await runner.connect_link(
            full_stack.tenant_a, user, ["sandbox"], provider_apps={"sandbox": "shop-b"}
        )
        with pytest.raises(ResolveError) as unknown_app:
            await runner.connect_link(full_stack.tenant_a, user, ["sandbox"], provider_apps={"sandbox": "x"})
        assert unknown_app.value.code == ErrorCode.INVALID_REQUEST
    finally:
        await runner.close()

    # In the browser: the link is confirmed, the page offers the provider, and the flow goes through
    # the named app's client.
    await confirm_connect_link(full_stack, link.url)
    page = await full_stack.client.get("/connect")
    assert re.findall(r'data-provider="([^"]+)"', page.text) == ["sandbox"], page.text
    consent = await full_stack.client.get("/connect/authorize/sandbox")
    (csrf,) = re.findall(r'name="csrf_token" value="([^"]+)"', consent.text)
    go = await full_stack.client.post("/connect/authorize/sandbox", data={"csrf_token": csrf})
    assert go.status_code in (302, 303), go.text
    assert parse_qs(urlsplit(go.headers["location"]).query)["client_id"] == [SHOP_B_CLIENT]
