# ruff: noqa: F811 - the fixtures are imported from secured_gateway_stack, then requested by name
"""The allowed path next to the attacks: a tenant defines its own provider through the HTTP API, the
vault keeps the definition, and a user connects it through the gateway and the vault (all on the
real permission file, the sandbox playing the provider)."""

from secured_gateway_stack import (  # noqa: F401 - fixtures
    KEY_A,
    KEY_B,
    _provider_servers,
    bearer,
    connect,
    secured_stack,
    setup_app,
    tenant_provider_definition,
)

PROVIDER = "acme_oauth"


def _definition(sandbox_url: str) -> dict:
    return tenant_provider_definition(sandbox_url, PROVIDER)


async def test_a_tenant_defined_provider_is_kept_by_the_vault_and_connects(secured_stack):
    stack = secured_stack
    defined = await stack.client.post(
        "/v1/providers", headers=bearer(KEY_A), json=_definition(stack.sandbox_url)
    )
    assert defined.status_code == 201, defined.text
    assert defined.json()["tenant_defined"] is True

    rows = await stack.vault_rows(
        "SELECT tenant_id FROM vault.tenant_providers WHERE provider = :provider", provider=PROVIDER
    )
    assert [row.tenant_id for row in rows] == [stack.tenant_a]

    await setup_app(stack, provider=PROVIDER)
    started = await connect(stack, "alice", provider=PROVIDER)
    connection = await stack.client.get(f"/v1/connections/{started['connection_id']}", headers=bearer(KEY_A))
    assert connection.json()["provider"] == PROVIDER
    assert connection.json()["status"] == "active"
    token_calls = [r for r in stack.sandbox.requests if r.endpoint == "token"]
    assert [r.profile for r in token_calls] == ["standard"]

    listed = await stack.client.get("/v1/providers", headers=bearer(KEY_A))
    assert PROVIDER in {p["id"] for p in listed.json()["providers"]}
    other_tenant = await stack.client.get("/v1/providers", headers=bearer(KEY_B))
    assert PROVIDER not in {p["id"] for p in other_tenant.json()["providers"]}


async def test_a_catalogue_id_cannot_be_defined(secured_stack):
    stack = secured_stack
    hijack = _definition(stack.sandbox_url) | {"id": "sandbox"}
    refused = await stack.client.post("/v1/providers", headers=bearer(KEY_A), json=hijack)
    assert refused.status_code == 409, refused.text
    rows = await stack.vault_rows("SELECT provider FROM vault.tenant_providers")
    assert rows == []
