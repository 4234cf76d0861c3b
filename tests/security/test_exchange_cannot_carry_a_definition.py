# ruff: noqa: F811 - the fixtures are imported from secured_gateway_stack, then requested by name
"""Attack: with the gateway's NATS user, make the vault POST a tenant's client secret to any URL.

`vault.exchange` used to accept a `provider_definition` from its caller, even for a catalogue id.
The field is gone: a request carrying one is refused before anything is sent anywhere, and the
definition the vault acts on is the catalogue's (or the tenant's, as the vault keeps it).
"""

import json
import uuid

from secured_gateway_stack import (  # noqa: F401 - fixtures
    RETURN_TO,
    _provider_servers,
    as_gateway_user,
    attacker_server,
    secured_stack,
    setup_app,
)

from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.contract.vault import SUBJECT_EXCHANGE
from grantline.contract.vault_admin import SUBJECT_TENANT_PROVIDER_PUT, PutTenantProviderRequest
from grantline.providers.catalogue import load_catalogue


def _exchange(tenant_id: str, provider: str, **extra: object) -> bytes:
    return json.dumps(
        {
            "tenant_id": tenant_id,
            "connection_id": f"conn_{uuid.uuid4().hex[:12]}",
            "owner": "user:mallory",
            "provider": provider,
            "code": "any-code",
            "redirect_uri": RETURN_TO,
            **extra,
        }
    ).encode()


async def test_an_exchange_naming_a_catalogue_id_with_its_own_definition_is_refused(
    secured_stack, as_gateway_user, attacker_server
):
    stack = secured_stack
    await setup_app(stack)  # the tenant's client secret for `sandbox` is in the vault
    definition = load_catalogue(sandbox_url=stack.sandbox_url).get("sandbox").model_dump(mode="json")
    definition["oauth"]["token_url"] = f"{attacker_server.url}/steal"
    nc = await as_gateway_user()
    reply = await nc.request(
        SUBJECT_EXCHANGE,
        _exchange(stack.tenant_a, "sandbox", provider_definition=definition),
        timeout=5,
    )
    refused = ErrorReply.model_validate_json(reply.data)
    assert refused.error.code == ErrorCode.INVALID_REQUEST
    assert attacker_server.requests == []
    assert [r for r in stack.sandbox.requests if r.endpoint == "token"] == []


async def test_an_exchange_for_a_catalogue_id_goes_only_to_the_catalogue_token_url(
    secured_stack, as_gateway_user, attacker_server
):
    stack = secured_stack
    await setup_app(stack)
    nc = await as_gateway_user()
    # A well-formed exchange with a made-up code: the vault may only ask the catalogue's token URL.
    reply = await nc.request(SUBJECT_EXCHANGE, _exchange(stack.tenant_a, "sandbox"), timeout=10)
    assert ErrorReply.model_validate_json(reply.data).error.code == ErrorCode.INVALID_REQUEST
    assert attacker_server.requests == []
    assert [r.profile for r in stack.sandbox.requests if r.endpoint == "token"] == ["standard"]


async def test_the_vault_refuses_a_tenant_definition_under_a_catalogue_id(secured_stack, as_gateway_user):
    stack = secured_stack
    definition = load_catalogue(sandbox_url=stack.sandbox_url).get("sandbox").model_dump(mode="json")
    definition["oauth"]["token_url"] = "https://attacker.example/steal"
    nc = await as_gateway_user()
    request = PutTenantProviderRequest(tenant_id=stack.tenant_a, definition=definition)
    reply = await nc.request(SUBJECT_TENANT_PROVIDER_PUT, request.model_dump_json().encode(), timeout=5)
    assert ErrorReply.model_validate_json(reply.data).error.code == ErrorCode.CONFLICT
    assert await stack.vault_rows("SELECT provider FROM vault.tenant_providers") == []
