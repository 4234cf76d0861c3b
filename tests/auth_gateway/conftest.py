"""Fixtures for gateway integration tests: sandbox + stand-in vault + gateway, two tenants."""

import pytest
from gateway_support import StandInVault, running_gateway, sandbox_server

from grantline.auth_gateway.bootstrap import ensure_tenant_with_key

KEY_A = "glk_tenant_a_key_0123456789abcdefghij"
KEY_B = "glk_tenant_b_key_0123456789abcdefghij"


@pytest.fixture
async def stack(nats_url, database_url, nats_client):
    tenant_a = ensure_tenant_with_key(database_url, name="tenant-a", api_key=KEY_A)
    tenant_b = ensure_tenant_with_key(database_url, name="tenant-b", api_key=KEY_B)
    async with sandbox_server() as (sandbox_url, sandbox_state):
        vault = StandInVault(sandbox_url)
        await vault.start(nats_client)
        async with running_gateway(nats_url, database_url, sandbox_url) as (runtime, client):
            yield type(
                "Stack",
                (),
                dict(
                    client=client,
                    runtime=runtime,
                    vault=vault,
                    sandbox=sandbox_state,
                    sandbox_url=sandbox_url,
                    tenant_a=tenant_a,
                    tenant_b=tenant_b,
                ),
            )
        await vault.stop()
