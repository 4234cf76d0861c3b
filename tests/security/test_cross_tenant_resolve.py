"""Attack 2 of issue 15: the one `runner` credential resolved any tenant's, any user's token.

`vault.resolve` trusted `tenant_id` and `user_id` from the request body and needed no run. Now a
runner is an identity of its own tenants (runner-auth, through the auth callout), the subject names
the tenant, and the vault answers only inside a run grant. Played here with the real credentials on
a real nats-server with the real permission config, the real vault (as its own NATS user) and the
sandbox provider: a runner of tenant-a cannot ask on tenant-b's subject; on its own subject a grant of
tenant-b, a grant edited to name another user or tenant, or the old request without a grant gets
nothing; its own run's grant gets its own user's token.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nats
import pytest
import pytest_asyncio
from fixtures.run_grants import altered_grant, mint_grant
from fixtures.secured_nats import settings_as
from nats.aio.client import Client
from pydantic import BaseModel
from vault.vault_harness import SandboxServer, VaultHarness, running_vault, vault_settings, write_keyring

from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.devstack.embedded import free_port
from grantline.runner import ResolveError, RunnerClient
from grantline.runtime.nats.request_reply import RequestFailed
from grantline.runtime.nats.secret_wire import request_with_secrets


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[SandboxServer]:
    server = SandboxServer(free_port())
    server.start()
    yield server
    server.stop()


@dataclass
class AsGateway(VaultHarness):
    """Sets up connections the way the gateway does, with the gateway's own NATS user."""

    gateway: Client | None = None

    async def call(self, subject: str, message: BaseModel, reply_model: Any) -> Any:
        assert self.gateway is not None
        return await request_with_secrets(self.gateway, subject, message, reply_model, timeout=15)


@pytest_asyncio.fixture(loop_scope="session")
async def vault(
    secured_nats, declared_jetstream, database_url: str, sandbox_server: SandboxServer, tmp_path: Path
) -> AsyncIterator[AsGateway]:  # type: ignore[no-untyped-def]
    sandbox_server.reset()
    identity = settings_as("vault", secured_nats.url, secured_nats.permissions, secured_nats.passwords)
    identity.pop("nats_url")
    keyring = write_keyring(tmp_path / "keyring.json")
    settings = vault_settings(secured_nats.url, database_url, sandbox_server.url, keyring, **identity)
    gateway = await nats.connect(
        secured_nats.url,
        user="auth-gateway",
        password=secured_nats.passwords["auth-gateway"],
        inbox_prefix=secured_nats.permissions.user("auth-gateway").inbox_prefix,
        allow_reconnect=False,
    )
    try:
        async with running_vault(settings, sandbox_server) as harness:
            yield AsGateway(harness.runtime, harness.sandbox, gateway)
    finally:
        await gateway.close()


async def test_a_runner_of_tenant_a_resolves_its_own_runs_token_and_nothing_of_tenant_b(
    vault: AsGateway, runner_auth, connect
) -> None:  # type: ignore[no-untyped-def]
    for tenant in ("tenant-a", "tenant-b"):
        await vault.put_app("sandbox", tenant=tenant)
    await vault.connect("sandbox", user="alice", tenant="tenant-a")
    await vault.connect("sandbox", user="bob", tenant="tenant-b")
    runner = await connect(await runner_auth.issue(["tenant-a"]))
    client = RunnerClient(runner.nc, timeout=3)
    own = mint_grant("tenant-a", "alice", ["sandbox"], run_id="run-a")

    # Allowed: its own run's grant, on its own tenant's subject.
    token = await client.resolve(grant=own, provider="sandbox")
    assert token.access_token.get_secret_value().startswith("sbx_at_")

    # Tenant B's subject is not the runner's: NATS drops the request.
    foreign = mint_grant("tenant-b", "bob", ["sandbox"], run_id="run-b")
    with pytest.raises(RequestFailed):
        await client.resolve(grant=foreign, provider="sandbox", timeout=1)
    await runner.refused('Publish to "vault.resolve.tenant-b"')

    async def on_own_subject(body: dict[str, object]) -> ErrorReply:
        reply = await runner.nc.request("vault.resolve.tenant-a", json.dumps(body).encode(), timeout=5)
        return ErrorReply.model_validate_json(reply.data)

    # On its own subject: tenant B's grant, a grant edited to another user or tenant, or no grant.
    refused = await on_own_subject({"grant": foreign, "provider": "sandbox"})
    assert refused.error.code == ErrorCode.FORBIDDEN and "another tenant" in refused.error.message
    for edited in (altered_grant(own, sub="bob"), altered_grant(own, tid="tenant-b", sub="bob")):
        refused = await on_own_subject({"grant": edited, "provider": "sandbox"})
        assert refused.error.code == ErrorCode.FORBIDDEN and "signature" in refused.error.message
    old_style = await on_own_subject({"tenant_id": "tenant-b", "user_id": "bob", "provider": "sandbox"})
    assert old_style.error.code == ErrorCode.INVALID_REQUEST
    # And inside its own tenant, a grant for alice does not reach bob's token (bob has none here).
    with pytest.raises(ResolveError) as nothing:
        await client.resolve(grant=mint_grant("tenant-a", "bob", ["sandbox"]), provider="sandbox")
    assert nothing.value.code == ErrorCode.NOT_CONNECTED
