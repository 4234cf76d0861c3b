"""`grantline keys reseal`: unbound secrets sealed again beside a running vault, tested like rotation.

Rows are first rewritten as a version 1 vault wrote them (unbound_sealing.rewrite_unbound); the
migration then runs against the real database while the real vault serves resolves and refreshes.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import psycopg
import pytest
from fixtures.waiting import wait_for_async
from pydantic import SecretStr
from typer.testing import CliRunner
from unbound_sealing import rewrite_unbound
from vault_harness import TENANT, SandboxServer, VaultHarness, running_vault, vault_settings

from grantline.cli.main import app as cli
from grantline.cli.reseal import ResealReport, reseal_all, unbound_counts_at
from grantline.contract import vault as contract
from grantline.contract import vault_admin
from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.providers.token_response import TokenSet
from grantline.runtime.db.urls import libpq_url
from grantline.sandbox.faults import Fault
from grantline.vault.domain import Keyring, SecretField, load_keyring_file
from grantline.vault.service.refresh import Refresher
from grantline.vault.service.sealing import connection_row_context, seal_tokens

CONNECTIONS, APPS, PENDING = "vault.connections", "vault.provider_apps", "vault.pending_revocations"
API_KEY = "sbx_key_" + "k" * 24


class Killed(Exception):
    """Stands for the migration process being killed between two batches."""


async def _populate(vault: VaultHarness) -> dict[tuple[str, str, str], str]:
    """Two tenants' apps (one with a webhook secret), four OAuth connections, one API key; their tokens."""
    await vault.put_app("sandbox", webhook_secret=SecretStr("whsec_reseal_tests"))
    await vault.put_app("sandbox", tenant="tenant-b")
    for user in ("alice", "bob", "carol"):
        await vault.connect("sandbox", user=user, subject=user)
    await vault.connect("sandbox", user="dave", tenant="tenant-b", subject="dave")
    stored = await vault.call(
        vault_admin.SUBJECT_CONNECTION_API_KEY,
        vault_admin.StoreApiKeyRequest(
            tenant_id=TENANT,
            owner="user:erin",
            provider="sandbox_api_key",
            fields={"api_key": SecretStr(API_KEY)},
        ),
        contract.ConnectionInfo,
    )
    assert isinstance(stored, contract.ConnectionInfo), stored
    return await _tokens(
        vault,
        [(TENANT, u, "sandbox") for u in ("alice", "bob", "carol")]
        + [("tenant-b", "dave", "sandbox"), (TENANT, "erin", "sandbox_api_key")],
    )


async def _alice_and_bob_unbound(vault: VaultHarness) -> tuple[contract.ConnectionInfo, str]:
    """Alice's and bob's sandbox connections, rewritten unbound: alice's connection, bob's token."""
    await vault.put_app("sandbox")
    alice = await vault.connect("sandbox", user="alice", subject="alice")
    await vault.connect("sandbox", user="bob", subject="bob")
    await rewrite_unbound(vault)
    return alice, await vault.token(user="bob")


async def _tokens(vault: VaultHarness, who: list[tuple[str, str, str]]) -> dict[tuple[str, str, str], str]:
    return {(t, u, p): await vault.token(p, user=u, tenant=t) for t, u, p in who}


async def _refresh(vault: VaultHarness, connection_id: str, tenant: str = TENANT) -> object:
    return await vault.call(
        contract.SUBJECT_REFRESH,
        contract.RefreshRequest(tenant_id=tenant, connection_id=connection_id),
        contract.RefreshReply,
    )


def _reseal(database_url: str, keyring: Keyring, **options: object) -> ResealReport:
    return reseal_all(database_url, keyring, **options)  # type: ignore[arg-type]


async def _versions(vault: VaultHarness) -> set[int]:
    rows = await vault.sql(
        "SELECT get_byte(v, 0) FROM ("
        " SELECT unnest(ARRAY[access_token, refresh_token, id_token, api_key]) AS v FROM vault.connections"
        " UNION ALL SELECT unnest(ARRAY[client_secret, webhook_secret]) FROM vault.provider_apps) s"
        " WHERE v IS NOT NULL"
    )
    return {version for (version,) in rows}


async def test_reseal_finishes_after_a_kill_and_a_second_run_changes_nothing(
    vault: VaultHarness, keyring_file: Path, database_url: str
) -> None:
    tokens = await _populate(vault)
    assert await rewrite_unbound(vault) == 5 + 2
    assert await _versions(vault) == {1}
    assert await asyncio.to_thread(unbound_counts_at, database_url) == {CONNECTIONS: 5, APPS: 2, PENDING: 0}
    assert await _tokens(vault, list(tokens)) == tokens  # the vault reads the old format
    keyring = load_keyring_file(keyring_file)

    def kill_after_the_first_batch(table: str, report: ResealReport) -> None:
        raise Killed

    with pytest.raises(Killed):
        await asyncio.to_thread(
            _reseal, database_url, keyring, batch_size=2, on_batch=kill_after_the_first_batch
        )
    assert await asyncio.to_thread(unbound_counts_at, database_url) == {CONNECTIONS: 3, APPS: 2, PENDING: 0}
    assert await _versions(vault) == {1, 2}
    vault.ctx.keys.cache.clear()
    assert await _tokens(vault, list(tokens)) == tokens  # both formats at once

    report = await asyncio.to_thread(_reseal, database_url, keyring, batch_size=2)
    assert report.resealed == {CONNECTIONS: 3, APPS: 2, PENDING: 0}
    assert report.failures == [] and report.remaining == {CONNECTIONS: 0, APPS: 0, PENDING: 0}
    assert await _versions(vault) == {2}
    again = await asyncio.to_thread(_reseal, database_url, keyring, batch_size=2)
    assert again.resealed == {CONNECTIONS: 0, APPS: 0, PENDING: 0} and again.failures == []
    assert await _tokens(vault, list(tokens)) == tokens
    # The client secret still opens: a refresh goes through.
    [(alice_connection,)] = await vault.sql("SELECT id FROM vault.connections WHERE owner = 'user:alice'")
    refreshed = await _refresh(vault, alice_connection)
    assert isinstance(refreshed, contract.RefreshReply) and refreshed.refreshed, refreshed


async def test_a_refresh_in_flight_during_the_reseal_lands_its_rotated_tokens(
    vault: VaultHarness, keyring_file: Path, database_url: str
) -> None:
    await vault.put_app("sandbox_rotating")
    info = await vault.connect("sandbox_rotating")
    await rewrite_unbound(vault)
    before = await vault.token("sandbox_rotating")
    # The refresh takes its lease (reading the unbound tokens), then waits on the provider.
    vault.sandbox.state.add_fault(Fault(endpoint="token", grant_type="refresh_token", delay_ms=3000, times=1))
    refreshing = asyncio.ensure_future(Refresher(vault.ctx).refresh(TENANT, info.connection_id, force=True))

    async def leased() -> bool:
        [(owner,)] = await vault.sql(
            "SELECT lease_owner FROM vault.connections WHERE id = :id", id=info.connection_id
        )
        return owner is not None

    await wait_for_async(leased, timeout=10)
    report = await asyncio.to_thread(_reseal, database_url, load_keyring_file(keyring_file))
    assert report.resealed[CONNECTIONS] == 1
    assert await leased(), "the reseal must have run while the refresh held its lease"
    outcome = await refreshing
    assert outcome.refreshed and outcome.error is None, outcome
    after = await vault.token("sandbox_rotating")
    assert after != before
    assert await _versions(vault) == {2}
    # The rotated refresh token was kept: the next refresh is accepted by the provider.
    again = await _refresh(vault, info.connection_id)
    assert isinstance(again, contract.RefreshReply) and again.refreshed, again
    assert await vault.token("sandbox_rotating") not in (before, after)


async def test_a_write_between_the_reseals_read_and_its_write_wins(
    vault: VaultHarness, keyring_file: Path, database_url: str
) -> None:
    alice, bob_token = await _alice_and_bob_unbound(vault)
    [row] = await vault.sql("SELECT * FROM vault.connections WHERE id = :id", id=alice.connection_id)
    async with vault.runtime.driver_transaction() as conn:
        key = await vault.ctx.keys.load(conn, TENANT)
    written = seal_tokens(
        key,
        connection_row_context(row, SecretField.ACCESS_TOKEN),
        TokenSet(
            access_token=SecretStr("sbx_at_written_meanwhile"), refresh_token=SecretStr("sbx_rt_meanwhile")
        ),
    )
    async with await psycopg.AsyncConnection.connect(libpq_url(database_url)) as blocker:
        async with blocker.transaction():
            # Held like a vault transaction that is about to write alice's row.
            await blocker.execute(
                "SELECT 1 FROM vault.connections WHERE id = %s FOR UPDATE", (alice.connection_id,)
            )
            resealing = asyncio.ensure_future(
                asyncio.to_thread(_reseal, database_url, load_keyring_file(keyring_file))
            )

            async def reseal_waits_for_the_row() -> bool:
                rows = await vault.sql(
                    "SELECT 1 FROM pg_stat_activity"
                    " WHERE application_name = 'grantline-reseal' AND wait_event_type = 'Lock'"
                )
                return bool(rows)

            await wait_for_async(reseal_waits_for_the_row, timeout=10)
            await blocker.execute(
                "UPDATE vault.connections SET access_token = %s, refresh_token = %s, id_token = NULL"
                " WHERE id = %s",
                (written["access_token"], written["refresh_token"], alice.connection_id),
            )
        report = await resealing
    assert report.changed_meanwhile[CONNECTIONS] == 1 and report.resealed[CONNECTIONS] == 1
    assert report.remaining == {CONNECTIONS: 0, APPS: 0, PENDING: 0}
    assert await vault.token(user="alice") == "sbx_at_written_meanwhile"
    assert await vault.token(user="bob") == bob_token


async def test_a_vault_that_requires_bound_seals_refuses_unbound_values_until_resealed(
    nats_url: str, database_url: str, sandbox: SandboxServer, keyring_file: Path
) -> None:
    settings = vault_settings(nats_url, database_url, sandbox.url, keyring_file)
    async with running_vault(settings, sandbox) as vault:
        await vault.put_app("sandbox")
        alice = await vault.connect("sandbox", user="alice", subject="alice")
        token = await vault.token(user="alice")
        await rewrite_unbound(vault)
    strict_settings = settings.model_copy(update={"require_bound_seals": True})
    async with running_vault(strict_settings, sandbox) as strict:
        refused = await strict.resolve(user="alice")
        assert isinstance(refused, ErrorReply) and refused.error.code == ErrorCode.INTERNAL
        assert token not in refused.model_dump_json()
        refresh = await _refresh(strict, alice.connection_id)
        assert isinstance(refresh, ErrorReply) and refresh.error.code == ErrorCode.INTERNAL
        report = await asyncio.to_thread(_reseal, database_url, load_keyring_file(keyring_file))
        assert report.remaining == {CONNECTIONS: 0, APPS: 0, PENDING: 0}
        assert await strict.token(user="alice") == token
        refreshed = await _refresh(strict, alice.connection_id)
        assert isinstance(refreshed, contract.RefreshReply) and refreshed.refreshed, refreshed


async def test_the_cli_reports_progress_and_leaves_a_value_that_does_not_open(
    vault: VaultHarness, keyring_file: Path, database_url: str
) -> None:
    alice, bob_token = await _alice_and_bob_unbound(vault)
    # An unbound value copied from bob's row into alice's: it must not be re-sealed as alice's.
    await vault.sql(
        "UPDATE vault.connections SET access_token = (SELECT access_token FROM vault.connections"
        " WHERE owner = 'user:bob') WHERE id = :id",
        id=alice.connection_id,
    )
    runner = CliRunner()
    options = ["--keyring-file", str(keyring_file), "--database-url", database_url]
    status = await asyncio.to_thread(runner.invoke, cli, ["keys", "status", *options])
    assert status.exit_code == 0, status.output
    assert f"{CONNECTIONS}: 2 row(s) with secrets in the unbound format" in status.output
    assert f"{APPS}: 1 row(s) with secrets in the unbound format" in status.output

    result = await asyncio.to_thread(runner.invoke, cli, ["keys", "reseal", *options, "--batch-size", "1"])
    assert result.exit_code == 1, result.output
    assert f"{CONNECTIONS} {alice.connection_id}: left as it is, a value does not open (authentication)" in (
        result.output
    )
    assert f"{CONNECTIONS}: re-sealed 1 row(s)" in result.output
    assert bob_token not in result.output
    status = await asyncio.to_thread(runner.invoke, cli, ["keys", "status", *options])
    assert f"{CONNECTIONS}: 1 row(s) with secrets in the unbound format" in status.output
    assert f"{APPS}: 0 row(s)" in status.output
    assert await vault.token(user="bob") == bob_token

    # Once the bad row is gone (revoked: its secrets are deleted), the migration completes.
    revoked = await vault.call(
        contract.SUBJECT_REVOKE,
        contract.RevokeRequest(tenant_id=TENANT, connection_id=alice.connection_id),
        contract.OkReply,
    )
    assert isinstance(revoked, contract.OkReply), revoked
    result = await asyncio.to_thread(runner.invoke, cli, ["keys", "reseal", *options])
    assert result.exit_code == 0, result.output
    assert "every sealed secret is bound" in result.output


async def test_a_revocation_waiting_for_its_provider_is_resealed_and_still_reaches_it(
    nats_url: str, database_url: str, sandbox: SandboxServer, keyring_file: Path
) -> None:
    """Without this, a pending revocation in the old format would be refused once bound seals are
    required, and the grant would stay alive at the provider."""
    from grantline.vault.service.revocation import retry_due_revocations

    settings = vault_settings(nats_url, database_url, sandbox.url, keyring_file)
    async with running_vault(settings, sandbox) as vault:
        await vault.put_app("sandbox")
        alice = await vault.connect("sandbox", user="alice", subject="alice")
        outage = vault.sandbox.state.add_fault(Fault(endpoint="revoke", status=503))
        revoked = await vault.call(
            contract.SUBJECT_REVOKE,
            contract.RevokeRequest(tenant_id=TENANT, connection_id=alice.connection_id, reason="admin"),
            contract.OkReply,
        )
        assert isinstance(revoked, contract.OkReply), revoked
        assert await rewrite_unbound(vault) == 3  # the app, the pending revocation, the emptied connection
        assert (await asyncio.to_thread(unbound_counts_at, database_url))[PENDING] == 1
        report = await asyncio.to_thread(_reseal, database_url, load_keyring_file(keyring_file))
        assert report.resealed[PENDING] == 1 and report.failures == []
        assert report.remaining == {CONNECTIONS: 0, APPS: 0, PENDING: 0}
        assert outage.id is not None and vault.sandbox.state.faults.remove(outage.id)
    strict_settings = settings.model_copy(update={"require_bound_seals": True})
    async with running_vault(strict_settings, sandbox) as strict:
        await strict.sql("UPDATE vault.pending_revocations SET next_attempt_at = now() RETURNING id")
        before = len(strict.sandbox.requests_to("revoke", "standard"))
        assert await retry_due_revocations(strict.ctx) == 1
        told = strict.sandbox.requests_to("revoke", "standard")[before:]
        assert len(told) == 1 and told[0].body["token"].startswith("sbx_rt_")
        assert await strict.sql("SELECT id FROM vault.pending_revocations") == []
