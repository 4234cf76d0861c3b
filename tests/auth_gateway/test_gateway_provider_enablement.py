"""Issue 18 item 5: a tenant switches a provider off (`PUT /v1/providers/{provider}/enabled`): it
vanishes from that tenant's `GET /v1/providers`, cannot be connected, and requirements naming it are
not met with a reason that says so; switched on again, the user's existing connection counts again.
Another tenant sees no change."""

from fixtures.waiting import wait_for_async
from gateway_flow import RETURN_TO, connect, connect_page, setup_app, tenant_provider_definition
from gateway_support import KEY_A, KEY_B, bearer


async def _switch(stack, enabled: bool, provider: str = "sandbox", key: str = KEY_A):
    return await stack.client.put(
        f"/v1/providers/{provider}/enabled", headers=bearer(key), json={"enabled": enabled}
    )


async def _listed(stack, key: str, **params) -> dict[str, bool]:
    response = await stack.client.get("/v1/providers", headers=bearer(key), params=params)
    assert response.status_code == 200, response.text
    return {p["id"]: p["enabled"] for p in response.json()["providers"]}


async def _check(stack, key: str = KEY_A):
    return await stack.client.post(
        "/v1/satisfaction/check", headers=bearer(key), json={"user_id": "flo", "requirements": ["sandbox"]}
    )


async def test_a_provider_switched_off_vanishes_cannot_be_connected_and_satisfies_nothing(full_stack):
    stack = full_stack
    await setup_app(stack)
    await setup_app(stack, key=KEY_B)
    await connect(stack, "flo")
    await connect(stack, "flo", key=KEY_B)
    await wait_for_async(lambda: _status_is(stack, 200), timeout=15)

    assert "/connect/authorize/sandbox" in await connect_page(stack, "gus")
    switched = await _switch(stack, False)
    assert switched.status_code == 200, switched.text
    assert switched.json()["id"] == "sandbox" and switched.json()["enabled"] is False
    assert "sandbox" not in await _listed(stack, KEY_A)
    assert (await _listed(stack, KEY_A, include_disabled="true"))["sandbox"] is False
    assert (await _listed(stack, KEY_B))["sandbox"] is True
    assert "/connect/authorize/sandbox" not in await connect_page(stack, "gus")
    consent = await stack.client.get("/connect/authorize/sandbox")
    assert consent.status_code == 404

    refused = await stack.client.post(
        "/v1/connections/initiate",
        headers=bearer(KEY_A),
        json={"user_id": "flo", "provider": "sandbox", "return_to": RETURN_TO},
    )
    assert refused.status_code == 422 and refused.json()["code"] == "provider_disabled"

    await wait_for_async(lambda: _status_is(stack, 422), timeout=15)
    problem = (await _check(stack)).json()
    assert "sandbox (disabled)" in problem["detail"]
    assert (await _check(stack, key=KEY_B)).status_code == 200  # the other tenant: unchanged

    assert (await _switch(stack, True)).status_code == 200
    assert "sandbox" in await _listed(stack, KEY_A)
    await wait_for_async(lambda: _status_is(stack, 200), timeout=15)


async def test_switching_an_unknown_or_foreign_provider_is_404_and_changes_nothing(full_stack):
    stack = full_stack
    assert (await _switch(stack, False, provider="no_such_provider")).status_code == 404
    # Tenant B's own provider does not exist for tenant A.
    own = tenant_provider_definition(stack.sandbox_url, "acme_oauth")
    assert (await stack.client.post("/v1/providers", headers=bearer(KEY_B), json=own)).status_code == 201
    assert (await _switch(stack, False, provider="acme_oauth")).status_code == 404
    assert (await _switch(stack, False, provider="acme_oauth", key=KEY_B)).status_code == 200
    assert (await _switch(full_stack, False, provider="Bad-Id")).status_code == 422
    rows = await stack.vault_rows("SELECT tenant_id, provider FROM vault.tenant_provider_switches")
    assert [tuple(row) for row in rows] == [(stack.tenant_b, "acme_oauth")]


async def _status_is(stack, status: int) -> bool:
    return (await _check(stack)).status_code == status
