"""Issue 18 item 4 (part): an API-key connector with several fields (Trello's key and token), even one
the tenant defined itself, is stored by the vault and delivered to the runner whole: `fields` in the
resolve reply carries every field by id (`access_token` stays the first one). No field value appears
in a response or an event."""

import json

import pytest
from fixtures.run_grants import mint_grant
from fixtures.waiting import wait_for_async
from gateway_flow import stream_events
from gateway_support import KEY_A, KEY_B, bearer
from nats.aio.client import Client

from grantline.contract.errors import ErrorCode
from grantline.runner import ResolveError, RunnerClient

KEY = "acme-key-canary-0123456789"
TOKEN = "acme-token-canary-9876543210"
DEFINITION = {
    "id": "acme_keys",
    "name": "Acme (key and token)",
    "category": "developer_tools",
    "auth": "api_key",
    "api_key": {
        "fields": [
            {"id": "api_key", "label": "API key", "pattern": "^[a-z0-9-]+$"},
            {"id": "token", "label": "Token"},
        ],
        "usage": "?key={api_key}&token={token}",
    },
}


async def test_every_field_of_a_tenant_defined_api_key_connector_reaches_the_runner(
    stack, nats_client: Client
):
    defined = await stack.client.post("/v1/providers", headers=bearer(KEY_A), json=DEFINITION)
    assert defined.status_code == 201, defined.text
    body = {"user_id": "kim", "provider": "acme_keys", "fields": {"api_key": KEY, "token": TOKEN}}
    stored = await stack.client.post("/v1/connections/api-key", headers=bearer(KEY_A), json=body)
    assert stored.status_code in (200, 201), stored.text
    # Tenant B has no such provider.
    assert (
        await stack.client.post("/v1/connections/api-key", headers=bearer(KEY_B), json=body)
    ).status_code in (
        404,
        422,
    )

    runner = RunnerClient(nats_client, timeout=10)
    reply = await runner.resolve(provider="acme_keys", grant=mint_grant(stack.tenant_a, "kim", ["acme_keys"]))
    assert {name: value.get_secret_value() for name, value in reply.fields.items()} == {
        "api_key": KEY,
        "token": TOKEN,
    }
    assert reply.access_token.get_secret_value() == KEY and reply.token_type == "api_key"
    with pytest.raises(ResolveError) as other:
        await runner.resolve(provider="acme_keys", grant=mint_grant(stack.tenant_b, "kim", ["acme_keys"]))
    assert other.value.code == ErrorCode.NOT_CONNECTED
    await runner.close()

    seen = [
        stored.text,
        json.dumps(await stream_events(stack)),
        json.dumps(await stream_events(stack, "AUDIT")),
    ]
    assert not [text for text in seen if KEY in text or TOKEN in text]


async def test_a_shared_workspace_key_serves_every_user_without_their_own(full_stack, nats_client: Client):
    """ "A single API key for all requests": the tenant stores a workspace key with `shared: true`."""
    stack = full_stack
    assert (
        await stack.client.post("/v1/providers", headers=bearer(KEY_A), json=DEFINITION)
    ).status_code == 201
    shared_fields = {"api_key": "shared-key", "token": "shared-token"}
    refused = await stack.client.post(
        "/v1/connections/api-key",
        headers=bearer(KEY_A),
        json={"user_id": "kim", "provider": "acme_keys", "fields": shared_fields, "shared": True},
    )
    assert refused.status_code == 422  # only a workspace key can be shared
    stored = await stack.client.post(
        "/v1/connections/api-key",
        headers=bearer(KEY_A),
        json={"workspace": True, "provider": "acme_keys", "fields": shared_fields, "shared": True},
    )
    assert stored.status_code in (200, 201), stored.text
    own = {"api_key": "own-key", "token": "own-token"}
    body = {"user_id": "kim", "provider": "acme_keys", "fields": own}
    assert (
        await stack.client.post("/v1/connections/api-key", headers=bearer(KEY_A), json=body)
    ).status_code in (
        200,
        201,
    )

    runner = RunnerClient(nats_client, timeout=10)

    async def fields_for(user: str) -> dict[str, str]:
        reply = await runner.resolve(
            provider="acme_keys", grant=mint_grant(stack.tenant_a, user, ["acme_keys"])
        )
        return {name: value.get_secret_value() for name, value in reply.fields.items()}

    assert await fields_for("lee") == shared_fields  # no key of their own: the workspace's
    assert await fields_for("kim") == own  # their own key comes first

    async def satisfied_for_lee() -> bool:
        response = await stack.client.post(
            "/v1/satisfaction/check",
            headers=bearer(KEY_A),
            json={"user_id": "lee", "requirements": ["acme_keys"]},
        )
        return response.status_code == 200

    await wait_for_async(satisfied_for_lee, timeout=15)
    await runner.close()


async def test_a_key_the_providers_check_call_refuses_is_not_stored(stack):
    """The definition's check call (here the sandbox's API-key userinfo) runs before the vault stores."""
    checked = {
        "id": "acme_checked",
        "name": "Acme (checked keys)",
        "category": "developer_tools",
        "auth": "api_key",
        "api_key": {
            "fields": [{"id": "api_key", "label": "API key"}],
            "check": {
                "url": f"{stack.sandbox_url}/p/api_key/userinfo",
                "headers": {"X-Api-Key": "{api_key}"},
            },
        },
    }
    assert (await stack.client.post("/v1/providers", headers=bearer(KEY_A), json=checked)).status_code == 201
    made_up = "made-up-key-canary-000111222"
    body = {"user_id": "kim", "provider": "acme_checked", "fields": {"api_key": made_up}}
    refused = await stack.client.post("/v1/connections/api-key", headers=bearer(KEY_A), json=body)
    assert refused.status_code == 422 and "refused the key" in refused.json()["detail"]
    assert made_up not in refused.text
    issued = stack.sandbox.issue_api_key("kim").value
    body["fields"] = {"api_key": issued}
    stored = await stack.client.post("/v1/connections/api-key", headers=bearer(KEY_A), json=body)
    assert stored.status_code in (200, 201), stored.text
    listed = await stack.client.get("/v1/connections?user_id=kim", headers=bearer(KEY_A))
    assert [c["provider"] for c in listed.json()["connections"]] == ["acme_checked"]
    checks = [r for r in stack.sandbox.requests if r.endpoint == "userinfo" and r.profile == "api_key"]
    assert len(checks) == 2
