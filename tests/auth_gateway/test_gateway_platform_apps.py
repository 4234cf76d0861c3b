"""Issue 18 item 6: an operator's platform app (`grantline platform-apps put`) serves every tenant
without its own provider app; a tenant's own app takes precedence. Its secret is sealed under the
platform's own key, used by the vault for the exchange, refreshes and revocations, and never shown to
a tenant; nothing on the bus can name the platform."""

import asyncio
import base64
import json
from urllib.parse import unquote

from gateway_flow import (
    authorize,
    callback,
    connect,
    connect_through_vault,
    github_revocation_poster,
    put_named_app,
    query,
    sandbox_requests,
    setup_app,
    start,
    status_of,
    stream_events,
)
from gateway_support import CLIENT_ID, KEY_A, KEY_B, REDIRECT_URI, bearer
from typer.testing import CliRunner

from grantline.cli.main import app as cli
from grantline.contract import vault
from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.runtime.nats.secret_wire import request_with_secrets

PLATFORM_CLIENT = "platform-verified-client"
PLATFORM_SECRET = "sbx_secret_platform_canary_0123456789"
PLATFORM_WEBHOOK_SECRET = "github-hook-secret-platform-canary"


def _client_of(request) -> str | None:
    """The client id a recorded token or revocation request authenticated with (body or Basic)."""
    if request.body and request.body.get("client_id"):
        return request.body["client_id"]
    header = {k.lower(): v for k, v in request.headers.items()}.get("authorization", "")
    if header.startswith("Basic "):
        return unquote(base64.b64decode(header[6:]).decode().split(":", 1)[0])
    return None


def _operator_environment(stack, tmp_path, database_url: str) -> dict[str, str]:
    """What `grantline platform-apps` runs with: the vault's database and keyring."""
    return {
        "GRANTLINE_DATABASE_URL": database_url,
        "GRANTLINE_MASTER_KEYRING_FILE": str(tmp_path / "master-keyring.json"),
        "GRANTLINE_SANDBOX_URL": stack.sandbox_url,
    }


async def _operator_puts_the_platform_app(stack, tmp_path, database_url: str) -> None:
    secret_file = tmp_path / "platform-secret"
    secret_file.write_text(PLATFORM_SECRET)
    env = _operator_environment(stack, tmp_path, database_url)
    args = ["platform-apps", "put", "sandbox", "--client-id", PLATFORM_CLIENT]
    result = await asyncio.to_thread(
        CliRunner().invoke, cli, [*args, "--client-secret-file", str(secret_file), "--scope", "read"], env=env
    )
    assert result.exit_code == 0, result.output
    assert PLATFORM_SECRET not in result.output
    listed = await asyncio.to_thread(CliRunner().invoke, cli, ["platform-apps", "list"], env=env)
    assert listed.exit_code == 0 and f"sandbox\t{PLATFORM_CLIENT}\tenabled" in listed.output


async def test_a_tenant_without_its_own_app_connects_through_the_platform_app(stack, tmp_path, database_url):
    stack.sandbox.register_client(PLATFORM_CLIENT, PLATFORM_SECRET, redirect_uris=[REDIRECT_URI])
    await _operator_puts_the_platform_app(stack, tmp_path, database_url)
    seen: list[str] = []

    # Tenant A has no app of its own: it does not see the platform's, yet connects through it.
    apps = await stack.client.get("/v1/provider-apps", headers=bearer(KEY_A))
    assert apps.json()["provider_apps"] == []
    assert (await stack.client.get("/v1/provider-apps/sandbox", headers=bearer(KEY_A))).status_code == 404
    catalogue = await stack.client.get("/v1/providers", headers=bearer(KEY_A))
    seen += [apps.text, catalogue.text]
    started = await start(stack, "ivy")
    assert query(started["authorize_url"])["client_id"] == PLATFORM_CLIENT
    outcome = await callback(stack, await authorize(stack, started["authorize_url"]))
    assert outcome["status"] == "connected", outcome
    tokens = sandbox_requests(stack, "token")
    assert tokens and _client_of(tokens[-1]) == PLATFORM_CLIENT

    # The vault refreshes with the platform's secret (sealed under the platform's own key).
    refreshed = await request_with_secrets(
        stack.vault.nats,
        vault.SUBJECT_REFRESH,
        vault.RefreshRequest(tenant_id=stack.tenant_a, connection_id=started["connection_id"]),
        vault.RefreshReply,
        timeout=10,
    )
    assert isinstance(refreshed, vault.RefreshReply) and refreshed.refreshed, refreshed

    # Tenant B's own app takes precedence.
    await setup_app(stack, key=KEY_B)
    own = await start(stack, "ivy", key=KEY_B)
    assert query(own["authorize_url"])["client_id"] == CLIENT_ID

    # Revoking tells the provider with the platform's client.
    revoked = await stack.client.delete(f"/v1/connections/{started['connection_id']}", headers=bearer(KEY_A))
    seen.append(revoked.text)
    assert revoked.status_code == 200, revoked.text
    assert [_client_of(r) for r in sandbox_requests(stack, "revoke")] == [PLATFORM_CLIENT]

    events = json.dumps(await stream_events(stack))
    for text in [*seen, events]:
        assert PLATFORM_SECRET not in text


async def _ivys_connections(stack) -> list:
    return await stack.vault_rows(
        "SELECT c.id, c.status, a.client_id FROM vault.connections c"
        " JOIN vault.provider_apps a ON a.id = c.provider_app_id"
        " WHERE c.tenant_id = :tenant AND c.owner = 'user:ivy'",
        tenant=stack.tenant_a,
    )


async def test_moving_a_connection_to_the_tenants_own_app_ends_the_platform_apps_grant(
    stack, tmp_path, database_url
):
    stack.sandbox.register_client(PLATFORM_CLIENT, PLATFORM_SECRET, redirect_uris=[REDIRECT_URI])
    await _operator_puts_the_platform_app(stack, tmp_path, database_url)
    await connect(stack, "ivy")
    [before] = await _ivys_connections(stack)
    assert before.client_id == PLATFORM_CLIENT

    # The tenant registers its own app; the user connects the same account again, through it.
    await setup_app(stack, key=KEY_A)
    await connect(stack, "ivy")
    [after] = await _ivys_connections(stack)
    assert (after.id, after.status, after.client_id) == (before.id, "active", CLIENT_ID)

    # The platform's grant, whose tokens were just overwritten, is revoked at the provider with the
    # platform's client; the connection's new grant still refreshes with the tenant's.
    assert [_client_of(r) for r in sandbox_requests(stack, "revoke")] == [PLATFORM_CLIENT]
    assert await stack.vault_rows("SELECT id FROM vault.pending_revocations") == []
    refreshed = await request_with_secrets(
        stack.vault.nats,
        vault.SUBJECT_REFRESH,
        vault.RefreshRequest(tenant_id=stack.tenant_a, connection_id=after.id),
        vault.RefreshReply,
        timeout=10,
    )
    assert isinstance(refreshed, vault.RefreshReply) and refreshed.refreshed, refreshed
    assert _client_of(sandbox_requests(stack, "token")[-1]) == CLIENT_ID


async def test_moving_a_connection_to_an_app_with_the_same_client_id_revokes_nothing(
    stack, tmp_path, database_url
):
    # Providers end every grant of a client at once: revoking the old token would end the new grant.
    stack.sandbox.register_client(PLATFORM_CLIENT, PLATFORM_SECRET, redirect_uris=[REDIRECT_URI])
    await _operator_puts_the_platform_app(stack, tmp_path, database_url)
    await connect(stack, "ivy")
    await setup_app(stack, key=KEY_A, client_id=PLATFORM_CLIENT, client_secret=PLATFORM_SECRET)
    await connect(stack, "ivy")
    [after] = await _ivys_connections(stack)
    assert (after.status, after.client_id) == ("active", PLATFORM_CLIENT)
    assert sandbox_requests(stack, "revoke") == []


async def test_no_bus_message_can_name_the_platform(stack):
    for subject, body in [
        (vault.SUBJECT_EXCHANGE, {"tenant_id": "_platform"}),
        ("vault.provider_apps.get", {"tenant_id": "_platform", "provider": "sandbox"}),
        ("vault.provider_apps.put", {"tenant_id": "_platform", "provider": "sandbox", "client_id": "x"}),
    ]:
        raw = await stack.vault.nats.request(subject, json.dumps(body).encode(), timeout=5)
        reply = ErrorReply.model_validate_json(raw.data)
        assert reply.error.code == ErrorCode.INVALID_REQUEST, reply
    rows = await stack.vault_rows(
        "SELECT count(*) AS n FROM vault.provider_apps WHERE tenant_id = '_platform'"
    )
    assert rows[0].n == 0


async def test_a_platform_apps_revocation_webhook_revokes_its_connections_in_every_tenant(
    stack, tmp_path, database_url
):
    # A user who removes the platform's GitHub app at GitHub ends the one grant that every tenant's
    # connection through it shared: each of those is revoked, each tenant is told of its own only,
    # and the same account's connection through a tenant's own app keeps working.
    stack.sandbox.register_client(PLATFORM_CLIENT, PLATFORM_SECRET, redirect_uris=[REDIRECT_URI])
    secret_file, hook_file = tmp_path / "platform-secret", tmp_path / "platform-hook"
    secret_file.write_text(PLATFORM_SECRET)
    hook_file.write_text(PLATFORM_WEBHOOK_SECRET)
    env = _operator_environment(stack, tmp_path, database_url)
    put = ["platform-apps", "put", "github", "--client-id", PLATFORM_CLIENT]
    put += ["--client-secret-file", str(secret_file), "--webhook-secret-file", str(hook_file)]
    stored = await asyncio.to_thread(CliRunner().invoke, cli, put, env=env)
    assert stored.exit_code == 0, stored.output
    listed = await asyncio.to_thread(CliRunner().invoke, cli, ["platform-apps", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    webhook_path = listed.output.strip().split("\t")[-1]
    assert webhook_path.startswith("/v1/webhooks/github/pa_"), listed.output
    assert webhook_path in stored.output
    assert PLATFORM_WEBHOOK_SECRET not in stored.output + listed.output

    def through_platform(tenant: str, connection_id: str):
        return connect_through_vault(
            stack,
            tenant,
            "github",
            "github",
            "octocat",
            client_id=PLATFORM_CLIENT,
            connection_id=connection_id,
        )

    in_a = await through_platform(stack.tenant_a, "conn_octocat_a")
    in_b = await through_platform(stack.tenant_b, "conn_octocat_b")
    assert in_a.provider_app is None and in_a.account == in_b.account
    # Tenant B's own (named) app: the same account through it is a connection of its own.
    tenant_app = await put_named_app(
        stack, "own", "b-own-client", "b-own-secret", key=KEY_B, provider="github", webhook_secret="b-hook"
    )
    own = await connect_through_vault(
        stack, stack.tenant_b, "github", "github", "octocat", provider_app="own", client_id="b-own-client"
    )
    post = github_revocation_poster(stack, in_a)

    # The platform's URL checks the platform's secret only; a tenant's app checks its own only.
    refused = await post(webhook_path, "b-hook")
    assert refused.status_code == 401, refused.text
    assert (await post(tenant_app["webhook_path"], PLATFORM_WEBHOOK_SECRET)).status_code == 401
    assert {await status_of(stack, "conn_octocat_a"), await status_of(stack, "conn_octocat_b", KEY_B)} == {
        "active"
    }

    accepted = await post(webhook_path, PLATFORM_WEBHOOK_SECRET)
    assert accepted.json() == {"status": "accepted", "challenge": None, "revoked_connections": 2}
    assert await status_of(stack, "conn_octocat_a") == "revoked"
    assert await status_of(stack, "conn_octocat_b", KEY_B) == "revoked"
    assert await status_of(stack, own.connection_id, KEY_B) == "active"
    replayed = await post(webhook_path, PLATFORM_WEBHOOK_SECRET)
    assert replayed.json()["status"] == "duplicate"

    # Each tenant's event and audit record name its own connection, never another tenant's.
    webhooks = [e for e in await stream_events(stack) if e["type"] == "connections.webhook"]
    assert sorted((e["tenant_id"], e["connection_ids"]) for e in webhooks) == sorted(
        [(stack.tenant_a, ["conn_octocat_a"]), (stack.tenant_b, ["conn_octocat_b"])]
    )
    audit = [r for r in await stream_events(stack, "AUDIT") if r.get("action") == "webhook.received"]
    assert sorted((r["tenant_id"], r["detail"]["revoked_connections"]) for r in audit) == sorted(
        [(stack.tenant_a, ["conn_octocat_a"]), (stack.tenant_b, ["conn_octocat_b"])]
    )
    assert PLATFORM_WEBHOOK_SECRET not in json.dumps(webhooks + audit)
