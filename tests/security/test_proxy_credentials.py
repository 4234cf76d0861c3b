"""An attacker holding the tool-call proxy's NATS credentials is no more than a runner of every tenant.

The proxy asks the vault for users' tokens, so its credentials are worth stealing. Played with the
real permission config on a real nats-server, the real vault (its own NATS user), the sandbox
provider and the proxy itself running as its `proxy` user: the allowed path works end to end
(resolve, report, audit records, the revocation subjects); with the proxy's credentials alone, a
resolve or report without a valid grant gets nothing, and nothing else is reachable: no other
service's requests or events, no run grants in flight (`runs.admitted`), no other audit action, no
stream reads, no ending another tenant's runs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
import pytest_asyncio
from fixtures.run_grants import altered_grant, mint_grant
from fixtures.secured_nats import settings_as
from vault.vault_harness import SandboxServer, VaultHarness, running_vault, vault_settings, write_keyring

from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.devstack.embedded import free_port
from grantline.runtime.nats.secret_wire import request_with_secrets
from grantline.runtime.run_grants import new_signing_key

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "proxy"))
from proxy_harness import ProxyHarness, proxy_settings, running_proxy


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[SandboxServer]:
    server = SandboxServer(free_port())
    server.start()
    yield server
    server.stop()


class _AsGateway(VaultHarness):
    gateway: object = None

    async def call(self, subject, message, reply_model):  # type: ignore[no-untyped-def,override]
        return await request_with_secrets(self.gateway, subject, message, reply_model, timeout=15)  # type: ignore[arg-type]


@pytest_asyncio.fixture(loop_scope="session")
async def stack(
    secured_nats, declared_jetstream, database_url: str, sandbox_server: SandboxServer, tmp_path: Path
) -> AsyncIterator[tuple[VaultHarness, ProxyHarness]]:  # type: ignore[no-untyped-def]
    sandbox_server.reset()
    vault_identity = settings_as("vault", secured_nats.url, secured_nats.permissions, secured_nats.passwords)
    vault_identity.pop("nats_url")
    settings = vault_settings(
        secured_nats.url,
        database_url,
        sandbox_server.url,
        write_keyring(tmp_path / "k.json"),
        **vault_identity,
    )
    proxy_identity = settings_as("proxy", secured_nats.url, secured_nats.permissions, secured_nats.passwords)
    proxy_identity.pop("nats_url")
    gateway = await nats.connect(
        secured_nats.url,
        user="auth-gateway",
        password=secured_nats.passwords["auth-gateway"],
        inbox_prefix=secured_nats.permissions.user("auth-gateway").inbox_prefix,
        allow_reconnect=False,
    )
    try:
        async with running_vault(settings, sandbox_server) as harness:
            as_gateway = _AsGateway(harness.runtime, harness.sandbox)
            as_gateway.gateway = gateway
            async with running_proxy(
                proxy_settings(secured_nats.url, sandbox_server.url, **proxy_identity)
            ) as proxy:
                yield as_gateway, proxy
    finally:
        await gateway.close()


async def test_the_proxy_works_with_its_own_least_rights(stack) -> None:  # type: ignore[no-untyped-def]
    vault, proxy = stack
    await vault.put_app("sandbox")
    await vault.connect("sandbox", user="alice", scopes=["read", "write"])
    grant = proxy.grant("alice", run_id="run-secured")
    assert (await proxy.call("POST", "sandbox/items", grant, json={"name": "a"})).status_code == 201
    state = vault.sandbox.state
    with state.lock:  # the gateway may not resolve: end alice's live access tokens at the provider
        live = [t.value for t in state.tokens.values() if t.kind == "access_token" and not t.revoked]
    for value in live:
        state.revoke_token(value)
    assert (await proxy.call("GET", "sandbox/items", grant)).status_code == 200  # report, refresh, retry
    # Its audit records were published and acknowledged (a refused publish would stay buffered and
    # make flush raise). Reading them back needs rights the proxy does not have.
    await proxy.runtime.proxy_audit.flush()
    assert len(proxy.runtime.proxy_audit) == 0


async def test_the_proxys_credentials_resolve_nothing_without_a_valid_grant(stack, connect) -> None:  # type: ignore[no-untyped-def]
    vault, _proxy = stack
    for tenant in ("tenant-a", "tenant-b"):
        await vault.put_app("sandbox", tenant=tenant)
    await vault.connect("sandbox", user="alice", tenant="tenant-a")
    await vault.connect("sandbox", user="bob", tenant="tenant-b")
    stolen = await connect("proxy")

    async def ask(subject: str, body: dict[str, object]) -> ErrorReply:
        reply = await stolen.nc.request(subject, json.dumps(body).encode(), timeout=5)
        return ErrorReply.model_validate_json(reply.data)

    alice = mint_grant("tenant-a", "alice", ["sandbox"], run_id="run-a")
    for subject in ("vault.resolve.tenant-b", "vault.report.tenant-b"):
        # A grant of tenant A on tenant B's subject, an edited grant, a grant from another key, none.
        body: dict[str, object] = {"provider": "sandbox", "connection_id": "conn_x"}
        if subject.startswith("vault.resolve"):
            body.pop("connection_id")
        refused = await ask(subject, {**body, "grant": alice})
        assert refused.error.code == ErrorCode.FORBIDDEN and "another tenant" in refused.error.message
        edited = altered_grant(alice, tid="tenant-b", sub="bob")
        assert (await ask(subject, {**body, "grant": edited})).error.code == ErrorCode.FORBIDDEN
        foreign_key = {"keys": [new_signing_key("test-1")]}
        forged = mint_grant("tenant-b", "bob", ["sandbox"], signing_keys=foreign_key)
        assert (await ask(subject, {**body, "grant": forged})).error.code == ErrorCode.FORBIDDEN
        assert (await ask(subject, {**body, "tenant_id": "tenant-b", "user_id": "bob"})).error.code == (
            ErrorCode.INVALID_REQUEST
        )


async def test_the_proxys_credentials_reach_nothing_else(connect) -> None:  # type: ignore[no-untyped-def]
    stolen = await connect("proxy")
    for subject in (
        "vault.exchange",
        "vault.revoke",
        "vault.refresh",
        "connections.revoked",
        "runs.finished.tenant-b",  # ending another tenant's runs
        "runs.admitted.tenant-b",
        "audit.token.resolved",  # another service's audit action
        "satisfaction.renew_grant.tenant-b",
        "$JS.API.STREAM.MSG.GET.AUDIT",
        "$JS.API.CONSUMER.CREATE.RUNS",
        "$JS.API.STREAM.PURGE.AUDIT",
    ):
        await stolen.publish_refused(subject)
    for subject in ("vault.>", "runs.admitted.*", "connections.>", "audit.>", "_INBOX.vault.>", "_INBOX.>"):
        await stolen.nc.subscribe(subject)
        await stolen.refused(f'Subscription to "{subject}"')
