"""Issue 18 item 5: disabling a provider app (`PUT` with `enabled: false`, or `DELETE`) revokes every
connection made with it in the same transaction, so the very next resolve is refused (the vault reads
status fresh on every call), and the provider hears of each revocation."""

import pytest
from fixtures.run_grants import mint_grant
from gateway_flow import CLIENT_ID, CLIENT_SECRET, connect, sandbox_requests, setup_app, stream_events
from gateway_support import KEY_A, bearer, new_user
from nats.aio.client import Client

from grantline.contract.errors import ErrorCode
from grantline.runner import ResolveError, RunnerClient


async def _disable_with_put(stack) -> None:
    response = await stack.client.put(
        "/v1/provider-apps/sandbox", headers=bearer(KEY_A), json={"client_id": CLIENT_ID, "enabled": False}
    )
    assert response.status_code == 200, response.text
    assert response.json()["enabled"] is False


async def _disable_with_delete(stack) -> None:
    response = await stack.client.delete("/v1/provider-apps/sandbox", headers=bearer(KEY_A))
    assert response.status_code == 200, response.text
    assert response.json()["revoked_connections"] == 1


@pytest.mark.parametrize("disable", [_disable_with_put, _disable_with_delete])
async def test_disabling_a_provider_app_revokes_its_connections_and_stops_resolves_at_once(
    stack, nats_client: Client, disable
) -> None:
    await setup_app(stack)
    user = new_user()
    started = await connect(stack, user)
    runner = RunnerClient(nats_client, timeout=10)
    grant = mint_grant(stack.tenant_a, user, ["sandbox"])
    assert (await runner.resolve(provider="sandbox", grant=grant)).access_token.get_secret_value()

    await disable(stack)
    with pytest.raises(ResolveError) as refused:
        await runner.resolve(provider="sandbox", grant=grant)
    assert refused.value.code == ErrorCode.REVOKED
    connection = await stack.client.get(f"/v1/connections/{started['connection_id']}", headers=bearer(KEY_A))
    assert connection.json()["status"] == "revoked"
    revoked = [e for e in await stream_events(stack) if e["type"] == "connections.revoked"]
    assert [(e["connection_id"], e["reason"]) for e in revoked] == [
        (started["connection_id"], "provider_app_disabled")
    ]
    assert sandbox_requests(stack, "revoke")  # the provider was told
    listed = await stack.client.get("/v1/provider-apps/sandbox", headers=bearer(KEY_A))
    assert listed.json()["enabled"] is False and CLIENT_SECRET not in listed.text
    # Enabling it again revokes nothing more and resolves stay refused until the user reconnects.
    again = await stack.client.put(
        "/v1/provider-apps/sandbox", headers=bearer(KEY_A), json={"client_id": CLIENT_ID, "enabled": True}
    )
    assert again.status_code == 200
    with pytest.raises(ResolveError):
        await runner.resolve(provider="sandbox", grant=grant)
    await runner.close()
