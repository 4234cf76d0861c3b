"""`vault.report.<tenant>`: a provider refused a token the vault resolved (a runner or the proxy says so).

The first report refreshes the connection once (and not again for a while, whoever reports); a report
about a connection the grant does not resolve to changes nothing; after the refresh, a token the
provider still accepts at its check endpoint keeps the connection active.
"""

from __future__ import annotations

from fixtures.run_grants import mint_grant
from pydantic import SecretStr
from vault_harness import TENANT, VaultHarness

from grantline.contract import vault as contract
from grantline.contract.envelope import tenant_scoped
from grantline.contract.errors import ErrorCode, ErrorReply


async def _report(
    vault: VaultHarness, user: str, connection_id: str, *, after_refresh: bool = False
) -> contract.ResolveReply | ErrorReply:
    grant = mint_grant(TENANT, user, ["sandbox"])
    return await vault.call(
        tenant_scoped(contract.SUBJECT_REPORT, TENANT),
        contract.ReportRequest(
            grant=SecretStr(grant),
            provider="sandbox",
            connection_id=connection_id,
            after_refresh=after_refresh,
        ),
        contract.ResolveReply,
    )


async def test_a_report_refreshes_once_and_answers_the_new_token(vault: VaultHarness) -> None:
    await vault.put_app("sandbox")
    info = await vault.connect("sandbox", user="alice", scopes=["read", "offline_access"])
    old = await vault.token("sandbox", user="alice")
    reply = await _report(vault, "alice", info.connection_id)
    assert isinstance(reply, contract.ResolveReply)
    assert reply.access_token.get_secret_value() != old
    assert vault.sandbox.refresh_grants("standard") == 1
    # Reported again at once (another replica, a storm of tool calls): no second refresh.
    again = await _report(vault, "alice", info.connection_id)
    assert isinstance(again, contract.ResolveReply)
    assert again.access_token.get_secret_value() == reply.access_token.get_secret_value()
    assert vault.sandbox.refresh_grants("standard") == 1


async def test_a_report_about_another_users_connection_changes_nothing(vault: VaultHarness) -> None:
    await vault.put_app("sandbox")
    alice = await vault.connect("sandbox", user="alice", scopes=["read", "offline_access"])
    await vault.connect("sandbox", user="bob", scopes=["read", "offline_access"])
    reply = await _report(vault, "bob", alice.connection_id)
    assert isinstance(reply, contract.ResolveReply)
    assert reply.connection_id != alice.connection_id  # bob's own token, as a resolve would answer
    assert vault.sandbox.refresh_grants("standard") == 0
    [(status,)] = await vault.sql(
        "SELECT status FROM vault.connections WHERE id = :id", id=alice.connection_id
    )
    assert status == "active"


async def test_a_token_the_provider_still_accepts_keeps_the_connection(vault: VaultHarness) -> None:
    await vault.put_app("sandbox")
    info = await vault.connect("sandbox", user="alice", scopes=["read", "offline_access"])
    reply = await _report(vault, "alice", info.connection_id, after_refresh=True)
    assert isinstance(reply, ErrorReply) and reply.error.code == ErrorCode.FORBIDDEN
    assert "connection works" in reply.error.message
    [(status,)] = await vault.sql(
        "SELECT status FROM vault.connections WHERE id = :id", id=info.connection_id
    )
    assert status == "active"
