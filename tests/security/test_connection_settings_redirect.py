# ruff: noqa: F811 - the fixtures are imported from secured_gateway_stack, then requested by name
"""Attack: point a connection's settings somewhere else, so the code (and later the refresh token)
goes to a host of the attacker's choosing.

A connection's settings fill the catalogue's URL templates (Shopify's `{shop}.myshopify.com`). A
tenant sending `initiate` settings, and the gateway's NATS user sending `vault.exchange` settings,
are both held to the catalogue entry's RE2 patterns: a value that would change a URL's host or path
is refused before any provider is called, and nothing is stored.
"""

import pytest
from pydantic import SecretStr
from secured_gateway_stack import (  # noqa: F401 - fixtures
    KEY_A,
    REDIRECT_URI,
    _provider_servers,
    as_gateway_user,
    secured_stack,
    setup_app,
)

from grantline.contract import vault
from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.runtime.nats.secret_wire import request_with_secrets

HOSTILE = ["evil.example/x", "evil.example#", "a.b", "x@evil.example", "my-store.evil"]


def _bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.mark.parametrize("shop", HOSTILE)
async def test_hostile_shop_settings_are_refused(secured_stack, as_gateway_user, shop):
    stack = secured_stack
    await setup_app(stack, provider="shopify", settings={"shop": "store-a"})
    token_calls = len([r for r in stack.sandbox.requests if r.endpoint == "token"])

    response = await stack.client.post(
        "/v1/connections/initiate",
        headers=_bearer(KEY_A),
        json={
            "user_id": "mallory",
            "provider": "shopify",
            "return_to": "http://127.0.0.1:3000/done",
            "settings": {"shop": shop},
        },
    )
    assert response.status_code == 422 and response.json()["code"] == "invalid_settings", response.text

    nc = await as_gateway_user()
    reply = await request_with_secrets(
        nc,
        vault.SUBJECT_EXCHANGE,
        vault.ExchangeRequest(
            tenant_id=stack.tenant_a,
            connection_id="conn-hostile-shop",
            owner="user:mallory",
            provider="shopify",
            code=SecretStr("any-code"),
            redirect_uri=REDIRECT_URI,
            settings={"shop": shop},
        ),
        vault.ConnectionInfo,
        timeout=10,
    )
    assert isinstance(reply, ErrorReply) and reply.error.code == ErrorCode.INVALID_REQUEST, reply
    assert len([r for r in stack.sandbox.requests if r.endpoint == "token"]) == token_calls
    rows = await stack.vault_rows("SELECT id FROM vault.connections WHERE owner = 'user:mallory'")
    assert rows == []
