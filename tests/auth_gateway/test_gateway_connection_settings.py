"""Connections with their own settings (issue 18 item 1): two Atlassian sites for one user are two
connections; the cloud id is found after the grant; settings reach the runner in the resolve reply;
`offline_access` is never lost from a custom scope list. The sandbox plays Atlassian."""

from __future__ import annotations

from typing import Any

from gateway_flow import authorize, callback, query, setup_app, start
from gateway_support import KEY_A, Stack, bearer, new_user
from mcp_support import resolve

from grantline.contract import vault
from grantline.contract.errors import ErrorReply
from grantline.sandbox.resource_endpoints import sandbox_sites


async def _connect(stack: Stack, user: str, **extra: Any) -> dict[str, str]:
    started = await start(stack, user, provider="atlassian", **extra)
    outcome = await callback(stack, await authorize(stack, f"{started['authorize_url']}&sandbox_user={user}"))
    return {**outcome, "connection_id": started["connection_id"], "authorize_url": started["authorize_url"]}


async def _connection(stack: Stack, connection_id: str) -> dict[str, Any]:
    response = await stack.client.get(f"/v1/connections/{connection_id}", headers=bearer(KEY_A))
    assert response.status_code == 200, response.text
    return response.json()


async def test_two_sites_are_two_connections_with_their_cloud_ids(stack):
    await setup_app(stack, provider="atlassian")
    user = new_user()
    first_site, second_site = sandbox_sites(user)

    first = await _connect(stack, user, name="Main site")
    assert first["status"] == "connected", first
    # A custom scope list without offline_access still asks for it (no refresh token otherwise).
    second = await _connect(
        stack, user, name="Lab", settings={"site_url": second_site["url"]}, scopes=["read:jira-work"]
    )
    assert second["status"] == "connected", second
    assert set(query(second["authorize_url"])["scope"].split()) == {"read:jira-work", "offline_access"}

    one, two = (
        await _connection(stack, first["connection_id"]),
        await _connection(stack, second["connection_id"]),
    )
    assert one["connection_id"] != two["connection_id"] and one["account"] == two["account"]
    assert (one["name"], one["settings"]) == ("Main site", {"cloud_id": first_site["id"]})
    assert (two["name"], two["settings"]) == (
        "Lab",
        {"site_url": second_site["url"], "cloud_id": second_site["id"]},
    )
    assert one["is_default"] and not two["is_default"]

    reply = await resolve(stack, "atlassian", user, stack.tenant_a)
    assert isinstance(reply, vault.ResolveReply), reply
    assert reply.connection_id == first["connection_id"]
    assert reply.settings == {"cloud_id": first_site["id"]}
    assert reply.api_base_url == f"https://api.atlassian.com/ex/jira/{first_site['id']}"


async def test_a_site_the_grant_does_not_reach_is_reported(stack):
    await setup_app(stack, provider="atlassian")
    user = new_user()
    outcome = await _connect(stack, user, settings={"site_url": "https://elsewhere.atlassian.net"})
    assert outcome["status"] == "error", outcome
    listed = (await stack.client.get(f"/v1/connections?user_id={user}", headers=bearer(KEY_A))).json()
    assert listed["connections"] == []
    reply = await resolve(stack, "atlassian", user, stack.tenant_a)
    assert isinstance(reply, ErrorReply) and reply.error.code == "not_connected"


async def test_settings_are_checked_against_the_catalogue_patterns(stack):
    await setup_app(stack, provider="atlassian")
    for settings in ({"site_url": "https://evil.example/x"}, {"nope": "x"}, {"cloud_id": "not-a-uuid"}):
        response = await stack.client.post(
            "/v1/connections/initiate",
            headers=bearer(KEY_A),
            json={
                "user_id": new_user(),
                "provider": "atlassian",
                "return_to": "http://127.0.0.1:3000/done",
                "settings": settings,
            },
        )
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "invalid_settings", response.text


async def test_a_connection_keeps_its_settings_on_reauthorization(stack):
    await setup_app(stack, provider="atlassian")
    user = new_user()
    _, second_site = sandbox_sites(user)
    first = await _connect(stack, user, settings={"site_url": second_site["url"]})
    again = await stack.client.post(
        "/v1/connections/initiate",
        headers=bearer(KEY_A),
        json={
            "user_id": user,
            "provider": "atlassian",
            "return_to": "http://127.0.0.1:3000/done",
            "connection_id": first["connection_id"],
            "settings": {"site_url": "https://other.atlassian.net"},
        },
    )
    assert again.status_code == 422, again.text
    reauthorized = await _connect(
        stack, user, connection_id=first["connection_id"], scopes=["write:jira-work"]
    )
    assert reauthorized["status"] == "connected" and reauthorized["connection_id"] == first["connection_id"]
    connection = await _connection(stack, first["connection_id"])
    assert connection["settings"]["cloud_id"] == second_site["id"]
    assert "write:jira-work" in connection["scopes"]
