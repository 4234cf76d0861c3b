# ruff: noqa: F811 - the fixtures are imported from secured_gateway_stack, then requested by name
"""Attack: with the gateway's NATS user, plant tokens of one's choosing in a victim's connection.

A re-authorizing `vault.exchange` names the connection whose tokens it replaces. The vault now
refuses unless that connection has the request's tenant, owner and provider, before it calls the
provider: the victim's sealed tokens stay exactly as they were.
"""

from pydantic import SecretStr
from secured_gateway_stack import (  # noqa: F401 - fixtures
    KEY_B,
    REDIRECT_URI,
    _provider_servers,
    as_gateway_user,
    authorize,
    connect,
    query,
    secured_stack,
    setup_app,
    start,
)

from grantline.contract import vault
from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.runtime.nats.secret_wire import request_with_secrets

SEALED = "SELECT access_token, refresh_token, owner, scopes FROM vault.connections WHERE id = :id"


async def _attackers_code(stack) -> str:
    """A real authorization code for the attacker's own sandbox account (never used by the gateway)."""
    started = await start(stack, "mallory")
    return query(await authorize(stack, started["authorize_url"]))["code"]


def _reauthorize(tenant_id: str, connection_id: str, owner: str, code: str) -> vault.ExchangeRequest:
    return vault.ExchangeRequest(
        tenant_id=tenant_id,
        connection_id=connection_id,
        owner=owner,
        provider="sandbox",
        code=SecretStr(code),
        redirect_uri=REDIRECT_URI,
        reauthorize=True,
    )


async def test_reauthorizing_another_users_connection_is_refused(secured_stack, as_gateway_user):
    stack = secured_stack
    await setup_app(stack)
    victim = (await connect(stack, "victim"))["connection_id"]
    before = await stack.vault_rows(SEALED, id=victim)
    code = await _attackers_code(stack)
    token_calls = len([r for r in stack.sandbox.requests if r.endpoint == "token"])

    nc = await as_gateway_user()
    reply = await request_with_secrets(
        nc,
        vault.SUBJECT_EXCHANGE,
        _reauthorize(stack.tenant_a, victim, "user:mallory", code),
        vault.ConnectionInfo,
    )

    assert isinstance(reply, ErrorReply), reply
    assert reply.error.code == ErrorCode.FORBIDDEN
    assert await stack.vault_rows(SEALED, id=victim) == before
    assert len([r for r in stack.sandbox.requests if r.endpoint == "token"]) == token_calls


async def test_reauthorizing_another_tenants_connection_is_refused(secured_stack, as_gateway_user):
    stack = secured_stack
    await setup_app(stack)
    await setup_app(stack, key=KEY_B)
    victim = (await connect(stack, "victim", key=KEY_B))["connection_id"]
    before = await stack.vault_rows(SEALED, id=victim)
    code = await _attackers_code(stack)

    nc = await as_gateway_user()
    # The victim's owner and provider, but the attacker's tenant: the connection is not there.
    reply = await request_with_secrets(
        nc,
        vault.SUBJECT_EXCHANGE,
        _reauthorize(stack.tenant_a, victim, "user:victim", code),
        vault.ConnectionInfo,
    )

    assert isinstance(reply, ErrorReply), reply
    assert reply.error.code == ErrorCode.FORBIDDEN
    assert await stack.vault_rows(SEALED, id=victim) == before


async def test_the_owner_reauthorizes_their_own_connection(secured_stack):
    stack = secured_stack
    await setup_app(stack)
    connection_id = (await connect(stack, "alice"))["connection_id"]
    again = await connect(stack, "alice", connection_id=connection_id)
    assert again["reauthorize"] is True
    assert again["connection_id"] == connection_id
