"""Claiming and refreshing against real Postgres, NATS and the sandbox provider (via a vault stand-in)."""

import asyncio
import logging
import os
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fixtures.waiting import wait_for_async
from refresher_harness import (
    SECRET_PREFIXES,
    SandboxServer,
    VaultStandIn,
    consumer_exists,
    refresher_settings,
    rows,
    settled,
)

from grantline.devstack.embedded import free_port
from grantline.refresher.app import create_runtime
from grantline.sandbox import Fault


async def test_a_token_is_refreshed_at_the_sandbox_before_it_expires(
    nats_url: str,
    database_url: str,
    vault: VaultStandIn,
    sandbox: SandboxServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    sandbox.state.update_settings("standard", {"expires_in": 3})
    runtime = create_runtime(refresher_settings(nats_url, database_url))
    await runtime.start()
    try:
        granted = await vault.grant_at_sandbox("c-live")
        sandbox.state.update_settings("standard", {"expires_in": 3600})  # the refreshed token lives long
        await wait_for_async(lambda: vault.refreshes["c-live"] >= 1, timeout=10)
        assert granted.expires_at is not None and vault.refreshed_at["c-live"][0] < granted.expires_at
        assert sandbox.state.grant_counts["standard:refresh_token"] == 1
        await wait_for_async(lambda: settled(database_url, ["c-live"]), timeout=10)
        row = (await rows(database_url))["c-live"]
        assert row["expires_at"] == vault.held["c-live"].expires_at and row["attempts"] == 0
    finally:
        await runtime.stop()
    # Only the service's own records: the test's HTTP client (playing the vault) logs its URLs.
    ours = [
        r
        for r in caplog.records
        if r.name.startswith("grantline.") and not r.name.startswith("grantline.sandbox")
    ]
    logged = " ".join(f"{r.getMessage()} {r.__dict__}" for r in ours)
    assert ours and not any(prefix in logged for prefix in SECRET_PREFIXES)


async def test_two_refreshers_never_refresh_one_connection_twice(
    nats_url: str, database_url: str, vault: VaultStandIn
) -> None:
    first = create_runtime(refresher_settings(nats_url, database_url, refresh_batch_size=7))
    second = create_runtime(refresher_settings(nats_url, database_url, refresh_batch_size=7))
    await first.start()
    await second.start()
    try:
        ids = [f"c-{i}" for i in range(60)]
        await asyncio.gather(*(vault.grant(cid, expires_in=0.5) for cid in ids))
        await wait_for_async(lambda: settled(database_url, ids), timeout=20)
        assert all(vault.refreshes[cid] == 1 for cid in ids), vault.refreshes
        assert all(vault.requests[cid] == 1 for cid in ids), vault.requests
    finally:
        await first.stop()
        await second.stop()


async def test_claims_beyond_a_providers_limit_wait_and_each_is_refreshed_once(
    nats_url: str, database_url: str, vault: VaultStandIn
) -> None:
    # One provider, a limit of 3 at a time, claims of 25: most claims wait in the worker for a slot.
    vault.answer_delay = 0.05
    runtime = create_runtime(
        refresher_settings(nats_url, database_url, refresh_provider_concurrency=3, refresh_batch_size=25)
    )
    await runtime.start()
    try:
        ids = [f"c-held-{i}" for i in range(40)]
        await asyncio.gather(*(vault.grant(cid, expires_in=0.5) for cid in ids))
        await wait_for_async(lambda: settled(database_url, ids), timeout=30)
        assert all(vault.refreshes[cid] == 1 for cid in ids), vault.refreshes
        assert all(vault.requests[cid] == 1 for cid in ids), vault.requests
        assert vault.most_in_flight <= 3
        assert all(row["attempts"] == 0 for row in (await rows(database_url)).values())
    finally:
        await runtime.stop()


async def test_a_killed_worker_loses_no_refresh(
    nats_url: str, database_url: str, vault: VaultStandIn
) -> None:
    ids = [f"c-kill-{i}" for i in range(20)]
    vault.answering.clear()  # the first worker's requests are never answered: it dies holding them
    env = {
        **os.environ,
        "GRANTLINE_NATS_URL": nats_url,
        "GRANTLINE_DATABASE_URL": database_url,
        "GRANTLINE_HTTP_PORT": str(free_port()),
        "GRANTLINE_REFRESH_LEASE_SECONDS": "2",
        "GRANTLINE_VAULT_TIMEOUT_SECONDS": "60",
        "GRANTLINE_REFRESH_POLL_SECONDS": "0.05",
        "GRANTLINE_LOG_LEVEL": "WARNING",
        "GRANTLINE_ENVIRONMENT": "test",  # a plaintext NATS on loopback: production would refuse it
    }
    grantline = Path(sys.executable).parent / "grantline"
    doomed = subprocess.Popen(
        [str(grantline), "run", "refresher"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        await wait_for_async(lambda: consumer_exists(vault), timeout=30)
        await asyncio.gather(*(vault.grant(cid, expires_in=0.5) for cid in ids))
        await wait_for_async(lambda: sum(vault.requests[cid] for cid in ids) == len(ids), timeout=30)
    finally:
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
    leased = await rows(database_url)
    assert all(leased[cid]["lease_token"] is not None for cid in ids)
    vault.answering.set()
    survivor = create_runtime(refresher_settings(nats_url, database_url))
    await survivor.start()
    try:
        await wait_for_async(lambda: settled(database_url, ids), timeout=20)
        # The dead worker's requests were answered to nobody and refreshed once; the survivor took the
        # rows over after the lease, asked again, and the vault (only_if_expiring_before) did not repeat.
        assert all(vault.refreshes[cid] == 1 for cid in ids), vault.refreshes
    finally:
        await survivor.stop()


async def test_429_and_5xx_are_retried_with_backoff(
    nats_url: str, database_url: str, vault: VaultStandIn, sandbox: SandboxServer
) -> None:
    sandbox.state.update_settings("standard", {"expires_in": 2})
    runtime = create_runtime(refresher_settings(nats_url, database_url))
    await runtime.start()
    try:
        sandbox.state.add_fault(
            Fault(endpoint="token", grant_type="refresh_token", status=429, retry_after=1, times=1)
        )
        sandbox.state.add_fault(Fault(endpoint="token", grant_type="refresh_token", status=503, times=1))
        await vault.grant_at_sandbox("c-flaky")
        sandbox.state.update_settings("standard", {"expires_in": 3600})
        await wait_for_async(lambda: vault.refreshes["c-flaky"] == 1, timeout=15)
        attempts = [
            r for r in sandbox.state.requests if r.endpoint == "token" and r.grant_type == "refresh_token"
        ]
        assert [r.status for r in attempts] == [429, 503, 200]
        # Retry-After (1 s) is honoured; the next retry waits at least half the base backoff.
        assert attempts[1].at - attempts[0].at >= 1.0
        assert attempts[2].at - attempts[1].at >= 0.1
        await wait_for_async(lambda: settled(database_url, ["c-flaky"]), timeout=10)
        row = (await rows(database_url))["c-flaky"]
        assert row["attempts"] == 0 and row["last_error"] is None
    finally:
        await runtime.stop()


async def test_invalid_grant_ends_the_schedule_after_one_attempt(
    nats_url: str, database_url: str, vault: VaultStandIn, sandbox: SandboxServer
) -> None:
    sandbox.state.update_settings("standard", {"expires_in": 2})
    runtime = create_runtime(refresher_settings(nats_url, database_url))
    await runtime.start()
    try:
        await vault.grant_at_sandbox("c-dead")
        sandbox.state.revoke_subject("sandbox-user")  # the user revoked access at the provider
        await wait_for_async(lambda: settled(database_url, ["c-dead"]), timeout=15)
        row = (await rows(database_url))["c-dead"]
        assert row["state"] == "ended" and row["next_attempt_at"] is None
        assert vault.requests["c-dead"] == 1
        assert sandbox.state.grant_counts["standard:refresh_token"] == 1
    finally:
        await runtime.stop()


async def test_a_revoked_connection_is_never_refreshed(
    nats_url: str, database_url: str, vault: VaultStandIn
) -> None:
    from grantline.contract.connections import ConnectionGranted, ConnectionRevoked

    runtime = create_runtime(refresher_settings(nats_url, database_url))
    await runtime.start()
    try:
        grant = await vault.grant("c-gone", expires_in=3600)
        revoke = ConnectionRevoked(
            tenant_id=grant.tenant_id,
            connection_id="c-gone",
            owner=grant.owner,
            provider=grant.provider,
            reason="user",
        )
        await vault.publish(revoke)
        # A stale grant (older than the revocation) arriving late would make it due at once.
        stale = ConnectionGranted(
            tenant_id=grant.tenant_id,
            connection_id="c-gone",
            owner=grant.owner,
            provider=grant.provider,
            occurred_at=grant.occurred_at,
            expires_at=datetime.now(UTC),
        )
        await vault.publish(stale)
        await wait_for_async(lambda: settled(database_url, ["c-gone"]), timeout=10)
        from test_refresher_schedule import consumer_caught_up

        await wait_for_async(lambda: consumer_caught_up(vault.nc), timeout=10)
        row = (await rows(database_url))["c-gone"]
        assert row["state"] == "ended" and row["next_attempt_at"] is None
        assert vault.requests["c-gone"] == 0
    finally:
        await runtime.stop()
