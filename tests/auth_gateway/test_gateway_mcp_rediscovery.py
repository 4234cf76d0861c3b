"""An MCP server's authorization server forgets the client Grantline registered there: the code
exchange answers `invalid_client`, the vault discovers the server again and registers anew, once, and
says so; the user's next connect works with no admin action. Real gateway, vault, NATS, Postgres and
the sandbox MCP server (its `registration_epoch` switch plays the forgetting)."""

from fixtures.waiting import wait_for_async
from gateway_flow import RETURN_TO, authorize, callback, stream_events
from gateway_support import KEY_A, bearer, new_user
from mcp_support import add_server, connect_server, refresh, resolve

from grantline.contract import vault
from grantline.contract.errors import ErrorReply


async def test_a_forgotten_dynamic_registration_is_registered_again_once(stack):
    stack.sandbox.mcp.set_switches("gone", cimd=False)
    stack.sandbox.mcp.allow_plain_http = True
    found = (await add_server(stack, "gone")).json()
    assert found["registration"] == "dynamic"
    old_client = found["client_id"]
    user = new_user()
    started = await stack.client.post(
        "/v1/connections/initiate",
        headers=bearer(KEY_A),
        json={"user_id": user, "provider": found["provider"], "return_to": RETURN_TO},
    )
    assert started.status_code == 200, started.text
    callback_url = await authorize(stack, started.json()["authorize_url"])

    # Between the consent and the callback, the authorization server loses its registrations.
    stack.sandbox.mcp.set_switches("gone", registration_epoch=1)
    outcome = await callback(stack, callback_url)
    assert outcome["status"] == "error", outcome

    with stack.sandbox.lock:
        registrations = [r for r in stack.sandbox.requests if r.endpoint == "register"]
    assert len(registrations) == 2  # once at add, once after the refusal: no loop
    kept = await stack.client.get(f"/v1/mcp-servers/{found['provider']}", headers=bearer(KEY_A))
    assert kept.status_code == 200 and kept.json()["registration"] == "dynamic"
    app = await stack.client.get(f"/v1/provider-apps/{found['provider']}", headers=bearer(KEY_A))
    assert app.json()["client_id"].startswith("sbx_dcr_") and app.json()["client_id"] != old_client
    connection_id = started.json()["connection_id"]

    async def recorded():
        return [
            event
            for event in await stream_events(stack, "AUDIT")
            if event.get("action") == "connection.exchanged" and event.get("connection_id") == connection_id
        ] or None

    (failure,) = await wait_for_async(recorded)
    assert failure["outcome"] == "failure"
    assert failure["detail"] == {"error": "invalid_client", "rediscovered": "dynamic"}

    # The user connects again: the new client works, and the token is for the server.
    assert (await connect_server(stack, found["provider"], user))["status"] == "connected"
    reply = await resolve(stack, found["provider"], user, stack.tenant_a)
    assert isinstance(reply, vault.ResolveReply), reply


async def test_a_refresh_refused_with_invalid_client_registers_again_and_asks_the_user_to_reconnect(stack):
    stack.sandbox.mcp.set_switches("lost", cimd=False)
    stack.sandbox.mcp.allow_plain_http = True
    found = (await add_server(stack, "lost")).json()
    user = new_user()
    outcome = await connect_server(stack, found["provider"], user)
    assert outcome["status"] == "connected", outcome

    stack.sandbox.mcp.set_switches("lost", registration_epoch=1)
    refreshed = await refresh(stack, outcome["connection_id"])
    assert isinstance(refreshed, ErrorReply) and refreshed.error.code == "reauth_required", refreshed
    with stack.sandbox.lock:
        assert len([r for r in stack.sandbox.requests if r.endpoint == "register"]) == 2
    connection = await stack.client.get(f"/v1/connections/{outcome['connection_id']}", headers=bearer(KEY_A))
    assert connection.json()["status"] == "reauth_required"

    # Re-authorizing the same connection goes through the new client.
    again = await connect_server(stack, found["provider"], user, connection_id=outcome["connection_id"])
    assert again["status"] == "connected", again
    reply = await resolve(stack, found["provider"], user, stack.tenant_a)
    assert isinstance(reply, vault.ResolveReply) and reply.connection_id == outcome["connection_id"]
