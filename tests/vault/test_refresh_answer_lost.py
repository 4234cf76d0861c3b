"""A refresh whose answer is lost (issue 20 items 1 and 3): a vault killed while a rotating provider
has spent the refresh token, and a provider slower than the refresh lease with two replicas.

The connection ends in a stated state per provider policy: a provider that accepts a rotated token
again within a grace period is retried and the connection recovers; otherwise `reauth_required`
(reason `refresh_outcome_unknown`) with its event, and the spent token is never presented again.
Real Postgres and NATS, the sandbox on a real port, and for the kill a real `grantline run vault`.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
from pathlib import Path

import nats
import pytest
from fixtures.waiting import wait_for_async
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from vault_harness import PROFILE_OF, TENANT, SandboxServer, VaultHarness, running_vault, vault_settings

from grantline.contract import vault as contract
from grantline.contract.connections import ReauthRequired
from grantline.contract.errors import ErrorCode
from grantline.contract.registry import decode_event
from grantline.devstack.embedded import free_port
from grantline.sandbox.faults import Fault
from grantline.vault.service.refresh import Refresher
from grantline.vault.settings import VaultSettings

LEASE_SECONDS = 5


def _late_answer(vault: VaultHarness, profile: str, seconds: float) -> None:
    """The provider spends the refresh token at once, and answers `seconds` later."""
    vault.sandbox.state.add_fault(
        Fault(
            endpoint="token",
            profile=profile,
            grant_type="refresh_token",
            delay_ms=int(seconds * 1000),
            answer_late=True,
            times=1,
        )
    )


def _short_lease(
    nats_url: str, database_url: str, sandbox: SandboxServer, keyring_file: Path
) -> VaultSettings:
    return vault_settings(
        nats_url, database_url, sandbox.url, keyring_file, refresh_lease_seconds=LEASE_SECONDS
    )


async def _reauth_events(vault: VaultHarness, connection_id: str) -> list[ReauthRequired]:
    js = vault.runtime.nats.jetstream()
    info = await js.stream_info("CONNECTIONS")
    found = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        event = decode_event((await js.get_msg("CONNECTIONS", seq)).data or b"")
        if isinstance(event, ReauthRequired) and event.connection_id == connection_id:
            found.append(event)
    return found


async def _state(vault: VaultHarness, connection_id: str) -> tuple[str, str | None, object]:
    [row] = await vault.sql(
        "SELECT status, status_reason, refresh_started_at FROM vault.connections WHERE id = :id",
        id=connection_id,
    )
    return row.status, row.status_reason, row.refresh_started_at


async def test_a_provider_slower_than_the_lease_gets_one_grant_and_the_connection_says_so(
    nats_url: str, database_url: str, sandbox: SandboxServer, keyring_file: Path
) -> None:
    settings = _short_lease(nats_url, database_url, sandbox, keyring_file)
    async with running_vault(settings, sandbox) as vault, running_vault(settings, sandbox) as other:
        await vault.put_app("sandbox_rotating")
        info = await vault.connect("sandbox_rotating")
        token = await vault.token("sandbox_rotating")
        _late_answer(vault, "rotating", LEASE_SECONDS + 3)
        # Two vault replicas (each its own instance id, pools and NATS connection).
        assert vault.ctx.instance_id != other.ctx.instance_id
        replica_a, replica_b = Refresher(vault.ctx), Refresher(other.ctx)
        outcomes = await asyncio.gather(
            replica_a.refresh(TENANT, info.connection_id, force=True),
            replica_b.refresh(TENANT, info.connection_id, force=True),
        )
        # Exactly one grant of the refresh token: the second replica waited for the lease, which
        # covers the provider call, and then found the outcome written.
        assert vault.sandbox.refresh_grants("rotating") == 1
        assert all(o.error is not None and o.error.error.code == ErrorCode.REAUTH_REQUIRED for o in outcomes)
        assert await _state(vault, info.connection_id) == ("reauth_required", "refresh_outcome_unknown", None)
        [event] = await wait_for_async(lambda: _reauth_events(vault, info.connection_id))
        assert event.reason == "refresh_outcome_unknown"
        assert token not in event.model_dump_json()
        reply = await vault.resolve("sandbox_rotating")
        assert reply.error.code == ErrorCode.REAUTH_REQUIRED  # type: ignore[union-attr]


async def test_a_late_answer_within_the_providers_grace_period_is_retried(
    nats_url: str, database_url: str, sandbox: SandboxServer, keyring_file: Path
) -> None:
    settings = _short_lease(nats_url, database_url, sandbox, keyring_file)
    async with running_vault(settings, sandbox) as vault:
        await vault.put_app("sandbox_rotating_grace")
        info = await vault.connect("sandbox_rotating_grace")
        _late_answer(vault, "rotating_grace", LEASE_SECONDS + 3)
        lost = await Refresher(vault.ctx).refresh(TENANT, info.connection_id, force=True)
        assert lost.error is not None and lost.error.error.code == ErrorCode.PROVIDER_UNAVAILABLE
        status, _, started = await _state(vault, info.connection_id)
        assert status == "active" and started is not None  # the token may be spent: remembered
        again = await Refresher(dataclasses.replace(vault.ctx, instance_id="replica-b")).refresh(
            TENANT, info.connection_id, force=True
        )
        assert again.refreshed and again.error is None, again
        assert vault.sandbox.refresh_grants("rotating_grace") == 2
        assert await _state(vault, info.connection_id) == ("active", None, None)
        assert isinstance(await vault.resolve("sandbox_rotating_grace"), contract.ResolveReply)


def _vault_process(settings: VaultSettings, keyring_file: Path) -> subprocess.Popen[bytes]:
    values = settings.model_dump()
    env = {
        **os.environ,
        "GRANTLINE_NATS_URL": values["nats_url"],
        "GRANTLINE_DATABASE_URL": values["database_url"],
        "GRANTLINE_ENVIRONMENT": "test",
        "GRANTLINE_HTTP_PORT": str(free_port()),
        "GRANTLINE_ALLOW_PRIVATE_PROVIDER_URLS": "true",
        "GRANTLINE_SANDBOX_URL": values["sandbox_url"],
        "GRANTLINE_MASTER_KEYRING_FILE": str(keyring_file),
        "GRANTLINE_REFRESH_LEASE_SECONDS": str(LEASE_SECONDS),
        "GRANTLINE_PROVIDER_MAX_ATTEMPTS": "1",
        "GRANTLINE_LOG_LEVEL": "WARNING",
    }
    grantline = Path(sys.executable).parent / "grantline"
    return subprocess.Popen(
        [str(grantline), "run", "vault"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


async def _refresh_reached_the_process(nats_url: str, connection_id: str) -> asyncio.Task[None]:
    """Ask the vault process to refresh; returns once a vault has taken the request (its answer is
    never awaited: the process dies first)."""
    nc = await nats.connect(nats_url)
    payload = (
        contract.RefreshRequest(tenant_id=TENANT, connection_id=connection_id).model_dump_json().encode()
    )

    async def ask() -> bool:
        try:
            await nc.request(contract.SUBJECT_REFRESH, payload, timeout=0.5)
        except NoRespondersError:
            return False  # not subscribed yet
        except NatsTimeout:
            return True  # taken, and still working on it
        return True

    await wait_for_async(ask, timeout=30)

    async def close() -> None:
        with contextlib.suppress(Exception):
            await nc.close()

    return asyncio.ensure_future(close())


@pytest.mark.parametrize(
    ("provider", "recovers"), [("sandbox_rotating", False), ("sandbox_rotating_grace", True)]
)
async def test_a_vault_killed_after_the_provider_spent_the_refresh_token(
    nats_url: str,
    database_url: str,
    sandbox: SandboxServer,
    keyring_file: Path,
    provider: str,
    recovers: bool,
) -> None:
    profile = PROFILE_OF[provider]
    settings = _short_lease(nats_url, database_url, sandbox, keyring_file)
    async with running_vault(settings, sandbox) as vault:
        await vault.put_app(provider)
        info = await vault.connect(provider)
        await vault.expire(info.connection_id)
    # Only the doomed process serves the vault's subjects now.
    _late_answer(vault, profile, LEASE_SECONDS + 3)
    doomed = _vault_process(settings, keyring_file)
    try:
        closing = await _refresh_reached_the_process(nats_url, info.connection_id)
        # The provider has granted (the old refresh token is spent); its answer is held back.
        await wait_for_async(lambda: vault.sandbox.refresh_grants(profile) == 1, timeout=30)
    finally:
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
    await closing

    async with running_vault(settings, sandbox) as survivor:
        [(started,)] = await survivor.sql(
            "SELECT refresh_started_at FROM vault.connections WHERE id = :id", id=info.connection_id
        )
        assert started is not None  # the dead process marked the call before making it
        outcome = await Refresher(survivor.ctx).refresh(TENANT, info.connection_id)
        if recovers:
            # Inside the provider's grace period the spent token is presented once more: accepted.
            assert outcome.refreshed and outcome.error is None, outcome
            assert survivor.sandbox.refresh_grants(profile) == 2
            assert isinstance(await survivor.resolve(provider), contract.ResolveReply)
        else:
            # Never presented again: the connection says it needs the user, with its event.
            assert outcome.error is not None and outcome.error.error.code == ErrorCode.REAUTH_REQUIRED
            assert survivor.sandbox.refresh_grants(profile) == 1
            assert await _state(survivor, info.connection_id) == (
                "reauth_required",
                "refresh_outcome_unknown",
                None,
            )
            [event] = await wait_for_async(lambda: _reauth_events(survivor, info.connection_id))
            assert event.reason == "refresh_outcome_unknown"
