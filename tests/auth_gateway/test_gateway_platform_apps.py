"""Issue 18 item 6: an operator's platform app (`grantline platform-apps put`) serves every tenant
without its own provider app; a tenant's own app takes precedence. Its secret is sealed under the
platform's own key, used by the vault for the exchange, refreshes and revocations, and never shown to
a tenant; nothing on the bus can name the platform."""

import asyncio
import base64
import json
from urllib.parse import unquote

from gateway_flow import authorize, callback, query, sandbox_requests, setup_app, start, stream_events
from gateway_support import CLIENT_ID, KEY_A, KEY_B, REDIRECT_URI, bearer
from typer.testing import CliRunner

from grantline.cli.main import app as cli
from grantline.contract import vault
from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.runtime.nats.secret_wire import request_with_secrets

PLATFORM_CLIENT = "platform-verified-client"
PLATFORM_SECRET = "sbx_secret_platform_canary_0123456789"


def _client_of(request) -> str | None:
    """The client id a recorded token or revocation request authenticated with (body or Basic)."""
    if request.body and request.body.get("client_id"):
        return request.body["client_id"]
    header = {k.lower(): v for k, v in request.headers.items()}.get("authorization", "")
    if header.startswith("Basic "):
        return unquote(base64.b64decode(header[6:]).decode().split(":", 1)[0])
    return None


async def _operator_puts_the_platform_app(stack, tmp_path, database_url: str) -> None:
    secret_file = tmp_path / "platform-secret"
    secret_file.write_text(PLATFORM_SECRET)
    env = {
        "GRANTLINE_DATABASE_URL": database_url,
        "GRANTLINE_MASTER_KEYRING_FILE": str(tmp_path / "master-keyring.json"),
        "GRANTLINE_SANDBOX_URL": stack.sandbox_url,
    }
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
