"""Tenant providers the gateway kept before the vault owned them are handed over, never lost."""

import json

from gateway_support import KEY_A, bearer
from sqlalchemy import text

from grantline.auth_gateway.adapters.bus import Bus
from grantline.auth_gateway.service.tenant_provider_handover import hand_over_tenant_providers

LEGACY = {
    "id": "legacy_oauth",
    "name": "Legacy",
    "category": "testing",
    "auth": "oauth2",
    "description": "Defined before the vault kept definitions.",
    "oauth": {
        "authorize_url": "https://legacy.example/authorize",
        "token_url": "https://legacy.example/token",
        "scopes": {"default": [], "available": {"read": "Read"}},
    },
}


async def _legacy_rows(stack) -> list:
    async with stack.runtime.sessions() as session:
        return list((await session.execute(text("SELECT provider FROM gateway.tenant_providers"))).all())


async def test_legacy_definitions_move_to_the_vault_without_overwriting(stack):
    async with stack.runtime.transaction() as session:
        await session.execute(
            text(
                "INSERT INTO gateway.tenant_providers (tenant_id, provider, definition)"
                " VALUES (:tenant, 'legacy_oauth', CAST(:definition AS jsonb))"
            ),
            {"tenant": stack.tenant_a, "definition": json.dumps(LEGACY)},
        )
    bus = Bus(lambda: stack.runtime.nats, timeout=5)
    assert await hand_over_tenant_providers(stack.runtime, bus) == 1
    assert await _legacy_rows(stack) == []
    listed = await stack.client.get("/v1/providers", headers=bearer(KEY_A))
    assert "legacy_oauth" in {p["id"] for p in listed.json()["providers"] if p["tenant_defined"]}
    assert await hand_over_tenant_providers(stack.runtime, bus) == 0
