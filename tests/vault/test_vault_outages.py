"""The vault's refresh across a Postgres restart: tokens the provider has issued are never lost."""

from __future__ import annotations

import asyncio

from fixtures.waiting import wait_for_async
from vault_harness import TENANT, VaultHarness

from grantline.sandbox.faults import Fault
from grantline.vault.service.refresh import Refresher


async def test_tokens_refreshed_while_postgres_restarts_still_land(
    postgres_server, vault: VaultHarness
) -> None:
    # A rotating provider: once it has answered, the old refresh token is spent, so losing the
    # answer would leave the connection unusable.
    postgres_server.require_restart()
    await vault.put_app("sandbox_rotating")
    info = await vault.connect("sandbox_rotating")
    await vault.expire(info.connection_id)
    asked = len(vault.sandbox.requests_to("token", "rotating"))
    vault.sandbox.state.add_fault(Fault(endpoint="token", grant_type="refresh_token", delay_ms=1000, times=1))
    refresher = Refresher(vault.ctx)
    refreshing = asyncio.ensure_future(refresher.refresh(TENANT, info.connection_id))
    await wait_for_async(lambda: len(vault.sandbox.requests_to("token", "rotating")) > asked, timeout=10)
    # Postgres goes away while the provider answers: the connections the refresh holds are dead.
    await asyncio.to_thread(postgres_server.restart)
    outcome = await refreshing
    assert outcome.refreshed and outcome.error is None, outcome

    # The rotated refresh token was stored: the next refresh uses it (a lost one is invalid_grant).
    async def expired() -> bool:
        try:
            await vault.expire(info.connection_id)
        except Exception:  # the test's own SQLAlchemy pool still holds dead connections
            return False
        return True

    await wait_for_async(expired, timeout=10)
    again = await refresher.refresh(TENANT, info.connection_id)
    assert again.refreshed and again.error is None, again
    assert vault.sandbox.refresh_grants("rotating") == 2
