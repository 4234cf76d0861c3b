"""Removing a revoked connection for good (issue 18 item 3): `POST /v1/connections/{id}/remove`."""

from gateway_flow import RETURN_TO, connect, setup_app, stream_events
from gateway_support import KEY_A, KEY_B, bearer, new_user


async def test_only_a_revoked_connection_is_removed_and_only_by_its_tenant(stack):
    await setup_app(stack)
    user = new_user()
    connection_id = (await connect(stack, user))["connection_id"]

    active = await stack.client.post(f"/v1/connections/{connection_id}/remove", headers=bearer(KEY_A))
    assert active.status_code == 409, active.text
    assert (
        await stack.client.delete(f"/v1/connections/{connection_id}", headers=bearer(KEY_A))
    ).status_code == 200
    listed = (await stack.client.get(f"/v1/connections?user_id={user}", headers=bearer(KEY_A))).json()
    assert [c["status"] for c in listed["connections"]] == ["revoked"]  # shown until removed

    foreign = await stack.client.post(f"/v1/connections/{connection_id}/remove", headers=bearer(KEY_B))
    assert foreign.status_code == 404, foreign.text
    removed = await stack.client.post(f"/v1/connections/{connection_id}/remove", headers=bearer(KEY_A))
    assert removed.status_code == 200 and removed.json() == {"connection_id": connection_id, "removed": True}
    gone = await stack.client.get(f"/v1/connections/{connection_id}", headers=bearer(KEY_A))
    assert gone.status_code == 404, gone.text
    again = await stack.client.post(f"/v1/connections/{connection_id}/remove", headers=bearer(KEY_A))
    assert again.status_code == 404, again.text
    audit = [e for e in await stream_events(stack, "AUDIT") if e.get("action") == "connection.removed"]
    assert [e["connection_id"] for e in audit] == [connection_id]


async def test_a_connection_is_narrowed_only_where_the_provider_allows(stack):
    await setup_app(stack)
    await setup_app(stack, provider="sandbox_pkce")
    user = new_user()
    connection_id = (await connect(stack, user, scopes=["profile", "read", "write"]))["connection_id"]
    narrowed = await connect(stack, user, connection_id=connection_id, scopes=["read"], narrow=True)
    assert narrowed["connection_id"] == connection_id and narrowed["scopes"] == ["read"]
    connection = (await stack.client.get(f"/v1/connections/{connection_id}", headers=bearer(KEY_A))).json()
    assert connection["scopes"] == ["read"]

    # Not for a new connection, and not where a provider keeps earlier grants.
    fresh = await stack.client.post(
        "/v1/connections/initiate",
        headers=bearer(KEY_A),
        json={
            "user_id": user,
            "provider": "sandbox",
            "return_to": RETURN_TO,
            "scopes": ["read"],
            "narrow": True,
        },
    )
    assert fresh.status_code == 422, fresh.text
    other = await connect(stack, user, provider="sandbox_pkce")
    refused = await stack.client.post(
        "/v1/connections/initiate",
        headers=bearer(KEY_A),
        json={
            "user_id": user,
            "provider": "sandbox_pkce",
            "return_to": RETURN_TO,
            "connection_id": other["connection_id"],
            "scopes": ["read"],
            "narrow": True,
        },
    )
    assert refused.status_code == 422 and "keeps earlier grants" in refused.text, refused.text
