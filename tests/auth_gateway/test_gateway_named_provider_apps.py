"""Issue 18 item 1: a connection made with its own OAuth client. A tenant registers named provider
apps beside a provider's default one (`PUT /v1/provider-apps/{provider}/apps/{name}`); a connection
initiated with `provider_app` is authorized, exchanged, refreshed, re-authorized and revoked with that
app's client. Named apps are the tenant's own: no other tenant, provider or the platform is reachable
by name, and their secrets are write-only like the default app's."""

from __future__ import annotations

import base64
import json
import logging
import uuid
from typing import Any
from urllib.parse import unquote

from gateway_flow import (
    CLIENT_ID,
    RETURN_TO,
    authorize,
    callback,
    connect_through_vault,
    put_named_app,
    query,
    sandbox_requests,
    setup_app,
    start,
    stream_events,
)
from gateway_support import KEY_A, KEY_B, REDIRECT_URI, Stack, bearer, new_user
from pydantic import SecretStr

from grantline.contract import vault, vault_admin
from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.providers.webhooks import github_signature
from grantline.runtime.nats.secret_wire import request_with_secrets

SHOP_B_CLIENT = "shop-b-client"
SHOP_B_SECRET = "sbx_secret_shop_b_canary_0123456789"
SHOP_C_CLIENT = "shop-c-client"
SHOP_C_SECRET = "sbx_secret_shop_c_canary_0123456789"


def client_of(request: Any) -> str | None:
    """The client id a recorded token or revocation request authenticated with (body or Basic)."""
    if request.body and request.body.get("client_id"):
        return str(request.body["client_id"])
    header = {k.lower(): v for k, v in request.headers.items()}.get("authorization", "")
    if header.startswith("Basic "):
        return unquote(base64.b64decode(header[6:]).decode().split(":", 1)[0])
    return None


async def connect_with(stack: Stack, user: str, **extra: Any) -> dict[str, Any]:
    started = await start(stack, user, **extra)
    outcome = await callback(stack, await authorize(stack, started["authorize_url"]))
    assert outcome["status"] == "connected", outcome
    return started


async def refresh(stack: Stack, tenant_id: str, connection_id: str) -> None:
    reply = await request_with_secrets(
        stack.vault.nats,
        vault.SUBJECT_REFRESH,
        vault.RefreshRequest(tenant_id=tenant_id, connection_id=connection_id),
        vault.RefreshReply,
        timeout=10,
    )
    assert isinstance(reply, vault.RefreshReply) and reply.refreshed, reply


async def exchange_on_the_bus(
    stack: Stack, connection_id: str, owner: str, **extra: Any
) -> vault.ConnectionInfo | ErrorReply:
    """`vault.exchange` as the gateway's bus user sends it, with a fresh sandbox code of tenant A's."""
    started = await start(stack, new_user())
    code = query(await authorize(stack, started["authorize_url"]))["code"]
    return await request_with_secrets(
        stack.vault.nats,
        vault.SUBJECT_EXCHANGE,
        vault.ExchangeRequest(
            tenant_id=stack.tenant_a,
            connection_id=connection_id,
            owner=owner,
            provider="sandbox",
            code=SecretStr(code),
            redirect_uri=REDIRECT_URI,
            **extra,
        ),
        vault.ConnectionInfo,
        timeout=10,
    )


async def initiate(stack: Stack, key: str = KEY_A, **body: Any) -> Any:
    return await stack.client.post(
        "/v1/connections/initiate",
        headers=bearer(key),
        json={"user_id": new_user(), "provider": "sandbox", "return_to": RETURN_TO, **body},
    )


async def test_named_apps_are_listed_read_and_keep_no_workspace_sharing(stack):
    await setup_app(stack)
    put = await put_named_app(stack, "shop-b", SHOP_B_CLIENT, SHOP_B_SECRET)
    assert (put["name"], put["client_id"], put["has_client_secret"]) == ("shop-b", SHOP_B_CLIENT, True)
    assert put["webhook_path"] == f"/v1/webhooks/sandbox/{put['id']}"

    listed = await stack.client.get("/v1/provider-apps", headers=bearer(KEY_A))
    assert [(a["provider"], a["name"]) for a in listed.json()["provider_apps"]] == [
        ("sandbox", None),
        ("sandbox", "shop-b"),
    ]
    one = await stack.client.get("/v1/provider-apps/sandbox/apps/shop-b", headers=bearer(KEY_A))
    assert one.status_code == 200 and one.json()["client_id"] == SHOP_B_CLIENT
    default = await stack.client.get("/v1/provider-apps/sandbox", headers=bearer(KEY_A))
    assert default.json()["client_id"] == CLIENT_ID and default.json()["name"] is None
    assert (
        await stack.client.get("/v1/provider-apps/sandbox/apps/nope", headers=bearer(KEY_A))
    ).status_code == 404

    # Workspace sharing is the provider's one policy, on its default app.
    shared = await stack.client.put(
        "/v1/provider-apps/sandbox/apps/shop-b",
        headers=bearer(KEY_A),
        json={"client_id": SHOP_B_CLIENT, "allow_workspace_fallback": True},
    )
    assert shared.status_code == 422, shared.text
    for text in (listed.text, one.text):
        assert SHOP_B_SECRET not in text


async def test_each_connection_uses_its_own_app_for_flow_refresh_reauthorization_and_revocation(
    stack, caplog
):
    caplog.set_level(logging.DEBUG)
    await setup_app(stack)
    await put_named_app(stack, "shop-b", SHOP_B_CLIENT, SHOP_B_SECRET)
    await put_named_app(stack, "shop-c", SHOP_C_CLIENT, SHOP_C_SECRET)
    user = new_user()

    default = await connect_with(stack, user)
    shop_b = await connect_with(stack, user, provider_app="shop-b")
    shop_c = await connect_with(stack, user, provider_app="shop-c")
    assert query(default["authorize_url"])["client_id"] == CLIENT_ID
    assert query(shop_b["authorize_url"])["client_id"] == SHOP_B_CLIENT
    assert query(shop_c["authorize_url"])["client_id"] == SHOP_C_CLIENT
    # The code exchanges went out with each connection's own client.
    assert [client_of(r) for r in sandbox_requests(stack, "token")] == [
        CLIENT_ID,
        SHOP_B_CLIENT,
        SHOP_C_CLIENT,
    ]

    listed = await stack.client.get(f"/v1/connections?user_id={user}", headers=bearer(KEY_A))
    apps = {c["connection_id"]: c["provider_app"] for c in listed.json()["connections"]}
    assert apps == {
        default["connection_id"]: None,
        shop_b["connection_id"]: "shop-b",
        shop_c["connection_id"]: "shop-c",
    }

    # Refreshes: each with the client its connection was made with.
    for started, client in ((shop_c, SHOP_C_CLIENT), (shop_b, SHOP_B_CLIENT), (default, CLIENT_ID)):
        await refresh(stack, stack.tenant_a, started["connection_id"])
        assert client_of(sandbox_requests(stack, "token")[-1]) == client

    # Re-authorizing (step-up too) keeps the connection's app; naming another one is refused.
    again = await start(stack, user, connection_id=shop_b["connection_id"], scopes=["write"])
    assert query(again["authorize_url"])["client_id"] == SHOP_B_CLIENT
    outcome = await callback(stack, await authorize(stack, again["authorize_url"]))
    assert outcome["status"] == "connected" and outcome["connection_id"] == shop_b["connection_id"]
    assert client_of(sandbox_requests(stack, "token")[-1]) == SHOP_B_CLIENT
    switched = await initiate(
        stack, user_id=user, connection_id=shop_b["connection_id"], provider_app="shop-c"
    )
    assert switched.status_code == 422, switched.text

    # Deleting a named app revokes its connections (told to the provider with its client) and no other.
    deleted = await stack.client.delete("/v1/provider-apps/sandbox/apps/shop-c", headers=bearer(KEY_A))
    assert deleted.status_code == 200, deleted.text
    assert deleted.json() == {"provider": "sandbox", "name": "shop-c", "revoked_connections": 1}
    assert [client_of(r) for r in sandbox_requests(stack, "revoke")] == [SHOP_C_CLIENT]
    statuses = {
        c["connection_id"]: c["status"]
        for c in (await stack.client.get(f"/v1/connections?user_id={user}", headers=bearer(KEY_A))).json()[
            "connections"
        ]
    }
    assert statuses[shop_c["connection_id"]] == "revoked"
    assert statuses[shop_b["connection_id"]] == statuses[default["connection_id"]] == "active"
    disabled = await initiate(stack, provider_app="shop-c")
    assert disabled.status_code == 409 and disabled.json()["code"] == "provider_app_disabled", disabled.text

    # A named app's secret is in no response, event or log line.
    events = json.dumps(await stream_events(stack)) + json.dumps(await stream_events(stack, "AUDIT"))
    for text in (listed.text, deleted.text, events, caplog.text):
        assert SHOP_B_SECRET not in text and SHOP_C_SECRET not in text
    assert shop_b["connection_id"] in events  # the scan reads real content


async def test_another_tenants_or_providers_app_name_reads_as_not_found(stack):
    # Tenant B has an app named shop-b; tenant A has none of that name.
    await setup_app(stack, key=KEY_B)
    await put_named_app(stack, "shop-b", SHOP_B_CLIENT, SHOP_B_SECRET, key=KEY_B)
    await setup_app(stack)
    foreign = await initiate(stack, provider_app="shop-b")
    assert foreign.status_code == 404 and foreign.json()["code"] == "not_found", foreign.text
    assert SHOP_B_CLIENT not in foreign.text
    # Tenant A's own app for another provider answers for that provider only.
    await put_named_app(stack, "pkce-shop", SHOP_C_CLIENT, SHOP_C_SECRET, provider="sandbox_pkce")
    other_provider = await initiate(stack, provider_app="pkce-shop")
    assert other_provider.status_code == 404, other_provider.text
    assert (
        await stack.client.get("/v1/provider-apps/sandbox/apps/pkce-shop", headers=bearer(KEY_A))
    ).status_code == 404

    # The vault itself never uses B's app for A, even when the gateway's bus user names it.
    started = await start(stack, new_user())
    reply = await exchange_on_the_bus(stack, started["connection_id"], "user:someone", provider_app="shop-b")
    assert isinstance(reply, ErrorReply) and reply.error.code == ErrorCode.INVALID_REQUEST, reply
    assert SHOP_B_CLIENT not in [client_of(r) for r in sandbox_requests(stack, "token")]


async def test_no_name_addresses_the_platform_owner(stack):
    await setup_app(stack)
    for name in ("_platform", "Shop", "a/b", "x" * 41):
        put = await stack.client.put(
            f"/v1/provider-apps/sandbox/apps/{name}", headers=bearer(KEY_A), json={"client_id": "c"}
        )
        assert put.status_code in (404, 422), (name, put.text)
        assert (await initiate(stack, provider_app=name)).status_code == 422, name
    # On the bus too: a name never starting with an underscore, and never a platform app's row.
    raw = await stack.vault.nats.request(
        vault_admin.SUBJECT_PROVIDER_APP_GET,
        json.dumps({"tenant_id": stack.tenant_a, "provider": "sandbox", "name": "_platform"}).encode(),
        timeout=5,
    )
    assert ErrorReply.model_validate_json(raw.data).error.code == ErrorCode.INVALID_REQUEST
    rows = await stack.vault_rows("SELECT count(*) AS n FROM vault.provider_apps WHERE name IS NOT NULL")
    assert rows[0].n == 0


async def test_the_vault_refuses_to_reauthorize_a_connection_through_another_app(stack):
    await setup_app(stack)
    await put_named_app(stack, "shop-b", SHOP_B_CLIENT, SHOP_B_SECRET)
    user = new_user()
    made = await connect_with(stack, user, provider_app="shop-b")
    before = len(sandbox_requests(stack, "token"))
    # The gateway's bus user asks to re-authorize the shop-b connection with the default app's client.
    reply = await exchange_on_the_bus(stack, made["connection_id"], f"user:{user}", reauthorize=True)
    assert isinstance(reply, ErrorReply) and reply.error.code == ErrorCode.FORBIDDEN, reply
    assert len(sandbox_requests(stack, "token")) == before  # refused before the provider was called
    connection = await stack.client.get(f"/v1/connections/{made['connection_id']}", headers=bearer(KEY_A))
    assert connection.json()["provider_app"] == "shop-b" and connection.json()["status"] == "active"


async def test_a_named_apps_webhook_url_is_checked_against_its_own_secret(stack):
    await setup_app(stack, provider="github", webhook_secret="github-hook-secret-default")
    named = await put_named_app(
        stack,
        "org-b",
        "org-b-client",
        "org-b-client-secret",
        provider="github",
        webhook_secret="github-hook-secret-org-b",
    )
    assert "github-hook-secret-org-b" not in str(named)
    default = (await stack.client.get("/v1/provider-apps/github", headers=bearer(KEY_A))).json()
    assert named["webhook_path"] != default["webhook_path"]
    # One GitHub account connected twice: once with each of the tenant's apps.
    with_default = await connect_through_vault(stack, stack.tenant_a, "github", "github", "hopper")
    with_named = await connect_through_vault(
        stack, stack.tenant_a, "github", "github", "hopper", provider_app="org-b", client_id="org-b-client"
    )
    assert with_default.account == with_named.account
    body = json.dumps(
        {"action": "revoked", "sender": {"login": "hopper", "id": int(with_default.account or 0)}}
    )

    async def post(path: str, secret: str) -> Any:
        headers = {
            "content-type": "application/json",
            "x-github-event": "github_app_authorization",
            "x-github-delivery": str(uuid.uuid4()),
            "x-hub-signature-256": github_signature(secret, body.encode()),
        }
        return await stack.client.post(path, content=body.encode(), headers=headers)

    async def status(connection: vault.ConnectionInfo) -> str:
        shown = await stack.client.get(f"/v1/connections/{connection.connection_id}", headers=bearer(KEY_A))
        return str(shown.json()["status"])

    # The default app's secret does not open the named app's URL, nor the named one's the default's.
    assert (await post(named["webhook_path"], "github-hook-secret-default")).status_code == 401
    assert (await post(default["webhook_path"], "github-hook-secret-org-b")).status_code == 401
    # The user removed org-b at GitHub: its connection goes, the one through the default app stays
    # (GitHub still honours that app's grant).
    accepted = await post(named["webhook_path"], "github-hook-secret-org-b")
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted", accepted.text
    assert accepted.json()["revoked_connections"] == 1
    assert await status(with_named) == "revoked" and await status(with_default) == "active"
    accepted = await post(default["webhook_path"], "github-hook-secret-default")
    assert accepted.json()["revoked_connections"] == 1 and await status(with_default) == "revoked"


async def test_a_named_app_alone_does_not_make_the_provider_connectable_without_naming_it(stack):
    await put_named_app(stack, "shop-b", SHOP_B_CLIENT, SHOP_B_SECRET)
    catalogue = (await stack.client.get("/v1/providers", headers=bearer(KEY_A))).json()
    [sandbox] = [p for p in catalogue["providers"] if p["id"] == "sandbox"]
    assert sandbox["configured"] is False
    unnamed = await initiate(stack)
    assert unnamed.status_code == 409 and unnamed.json()["code"] == "provider_app_missing", unnamed.text
    named = await initiate(stack, provider_app="shop-b")
    assert named.status_code == 200 and query(named.json()["authorize_url"])["client_id"] == SHOP_B_CLIENT
