"""Choosing among several accounts (issue 18 item 2): a user's second account is a second connection;
`PUT /v1/connections/{id}/default` chooses the one resolves use; a resolve may name a connection or an
account, only ever the grant's user's (the attack cases are in tests/security)."""

from __future__ import annotations

import json
from typing import Any

from fixtures.run_grants import mint_grant
from gateway_flow import RETURN_TO, authorize, callback, query, setup_app, start
from gateway_support import KEY_A, KEY_B, Stack, bearer, new_user
from pydantic import SecretStr

from grantline.contract import vault
from grantline.contract.envelope import tenant_scoped
from grantline.contract.errors import ErrorReply
from grantline.runtime.nats.secret_wire import request_with_secrets


async def connect_account(stack: Stack, user: str, account: str, **extra: Any) -> str:
    """Connect `user` to the sandbox, granting as the sandbox account `account`; the connection id."""
    started = await start(stack, user, **extra)
    outcome = await callback(
        stack, await authorize(stack, f"{started['authorize_url']}&sandbox_user={account}")
    )
    assert outcome["status"] == "connected", outcome
    return started["connection_id"]


async def resolve_as(
    stack: Stack,
    user: str,
    *,
    tenant: str | None = None,
    providers: tuple[str, ...] = ("sandbox",),
    **pick: Any,
) -> vault.ResolveReply | ErrorReply:
    tenant = tenant or stack.tenant_a
    grant = mint_grant(tenant, user, list(providers))
    return await request_with_secrets(
        stack.vault.nats,
        tenant_scoped(vault.SUBJECT_RESOLVE, tenant),
        vault.ResolveRequest(grant=SecretStr(grant), provider="sandbox", **pick),
        vault.ResolveReply,
        timeout=15,
    )


async def test_second_account_default_and_resolve_by_connection_or_account(stack):
    await setup_app(stack)
    user = new_user()
    work = await connect_account(stack, user, f"{user}-work", name="Work")
    home = await connect_account(stack, user, f"{user}-home", name="Home")
    assert work != home

    listed = (await stack.client.get(f"/v1/connections?user_id={user}", headers=bearer(KEY_A))).json()
    defaults = {c["connection_id"]: c["is_default"] for c in listed["connections"]}
    assert defaults == {work: True, home: False}

    default = await resolve_as(stack, user)
    assert isinstance(default, vault.ResolveReply) and default.connection_id == work
    by_id = await resolve_as(stack, user, connection_id=home)
    assert isinstance(by_id, vault.ResolveReply) and by_id.connection_id == home
    by_account = await resolve_as(stack, user, account=f"{user}-home")
    assert isinstance(by_account, vault.ResolveReply) and by_account.connection_id == home
    assert by_account.access_token.get_secret_value() != default.access_token.get_secret_value()

    chosen = await stack.client.put(f"/v1/connections/{home}/default", headers=bearer(KEY_A))
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["connection_id"] == home and chosen.json()["is_default"]
    now_default = await resolve_as(stack, user)
    assert isinstance(now_default, vault.ResolveReply) and now_default.connection_id == home
    previous = (await stack.client.get(f"/v1/connections/{work}", headers=bearer(KEY_A))).json()
    assert previous["is_default"] is False


async def test_default_is_only_for_active_connections_the_caller_sees(stack):
    await setup_app(stack)
    user = new_user()
    first = await connect_account(stack, user, f"{user}-a")
    second = await connect_account(stack, user, f"{user}-b")
    # Another tenant's key cannot touch it, and learns nothing about it.
    foreign = await stack.client.put(f"/v1/connections/{second}/default", headers=bearer(KEY_B))
    assert foreign.status_code == 404, foreign.text
    revoked = await stack.client.delete(f"/v1/connections/{second}", headers=bearer(KEY_A))
    assert revoked.status_code == 200, revoked.text
    refused = await stack.client.put(f"/v1/connections/{second}/default", headers=bearer(KEY_A))
    assert refused.status_code == 409, refused.text
    reply = await resolve_as(stack, user)
    assert isinstance(reply, vault.ResolveReply) and reply.connection_id == first
    gone = await resolve_as(stack, user, account=f"{user}-b")
    assert isinstance(gone, ErrorReply) and gone.error.code == "not_connected"


async def test_naming_both_a_connection_and_an_account_is_invalid(stack):
    await setup_app(stack)
    user = new_user()
    connection = await connect_account(stack, user, f"{user}-a")
    grant = mint_grant(stack.tenant_a, user, ["sandbox"])
    body = json.dumps({"grant": grant, "provider": "sandbox", "connection_id": connection, "account": "x"})
    body_bytes = body.encode()
    reply = await stack.vault.nats.request(
        tenant_scoped(vault.SUBJECT_RESOLVE, stack.tenant_a), body_bytes, timeout=10
    )
    assert b"invalid_request" in reply.data


async def test_attack_a_named_connection_of_another_user_provider_or_tenant_is_refused(stack):
    """A runner holding mallory's run grant names the victim's connection (or account), a connection
    of another provider, or one of another tenant: each reads as `not_connected`; the grant, not the
    named connection, decides the provider (`forbidden`)."""
    await setup_app(stack)
    await setup_app(stack, provider="sandbox_pkce")
    await setup_app(stack, key=KEY_B)
    victim, mallory = new_user(), new_user()
    victims = await connect_account(stack, victim, f"{victim}-acct")
    await connect_account(stack, mallory, f"{mallory}-acct")
    other_tenants = await connect_account(stack, mallory, f"{mallory}-b", key=KEY_B)
    other_provider = await connect_account(stack, mallory, f"{mallory}-pkce", provider="sandbox_pkce")

    for pick in (
        {"connection_id": victims},
        {"account": f"{victim}-acct"},
        {"connection_id": other_tenants},
        {"connection_id": other_provider},
    ):
        reply = await resolve_as(stack, mallory, providers=("sandbox", "sandbox_pkce"), **pick)
        assert isinstance(reply, ErrorReply) and reply.error.code == "not_connected", (pick, reply)

    reply = await resolve_as(stack, mallory, providers=("sandbox_pkce",), connection_id=victims)
    assert isinstance(reply, ErrorReply) and reply.error.code == "forbidden"
    # The allowed path: the victim's own grant resolves the victim's connection by id.
    own = await resolve_as(stack, victim, connection_id=victims)
    assert isinstance(own, vault.ResolveReply) and own.connection_id == victims


async def test_login_hint_reaches_the_provider_and_a_grant_by_another_account_is_reported(stack):
    await setup_app(stack)
    user = new_user()
    expected = f"{user}-work@sandbox.grantline.test"
    started = await start(stack, user, login_hint=expected)
    assert query(started["authorize_url"])["login_hint"] == expected
    # The browser was signed in as the user's other account.
    outcome = await callback(
        stack, await authorize(stack, f"{started['authorize_url']}&sandbox_user={user}-home")
    )
    assert outcome["status"] == "error" and outcome["error"] == "wrong_account", outcome
    listed = (await stack.client.get(f"/v1/connections?user_id={user}", headers=bearer(KEY_A))).json()
    assert listed["connections"] == []

    right = await connect_account(stack, user, f"{user}-work", login_hint=expected)
    assert (await stack.client.get(f"/v1/connections/{right}", headers=bearer(KEY_A))).json()["account"] == (
        f"{user}-work"
    )


async def test_domain_hint_is_checked_and_hints_need_a_provider_that_takes_them(stack):
    await setup_app(stack)
    await setup_app(stack, provider="sandbox_pkce")
    user = new_user()
    started = await start(stack, user, domain_hint="example.com")
    assert query(started["authorize_url"])["hd"] == "example.com"
    outcome = await callback(stack, await authorize(stack, f"{started['authorize_url']}&sandbox_user={user}"))
    assert outcome["status"] == "error" and outcome["error"] == "wrong_account", outcome
    await connect_account(stack, user, f"{user}-x", domain_hint="sandbox.grantline.test")

    for hint in ({"login_hint": "a@b.c"}, {"domain_hint": "b.c"}):
        response = await stack.client.post(
            "/v1/connections/initiate",
            headers=bearer(KEY_A),
            json={"user_id": user, "provider": "sandbox_pkce", "return_to": RETURN_TO, **hint},
        )
        assert response.status_code == 422, response.text
