"""A tenant forces the shared (workspace) connection for a provider: "all apps use the shared
authorization". Through the API, the vault's resolve and satisfaction, all real (NATS, Postgres, the
sandbox provider); satisfaction learns of the force only from the vault's events.
"""

from __future__ import annotations

import uuid

from fixtures.waiting import wait_for_async
from gateway_flow import RETURN_TO, authorize, callback, connect, setup_app
from gateway_support import CLIENT_ID, KEY_A, bearer, new_user
from nats.aio.client import Client

from grantline.contract import RunAdmitted, RunHeld
from grantline.runner import RunnerClient

APP = "shared-crm-assistant"
NEEDS = ["sandbox"]


async def _force(stack, forced: bool) -> dict:
    response = await stack.client.put(
        "/v1/provider-apps/sandbox",
        headers=bearer(KEY_A),
        json={"client_id": CLIENT_ID, "force_workspace_connection": forced},
    )
    assert response.status_code == 200, response.text
    return response.json()


async def _connect_workspace(stack) -> str:
    started = await stack.client.post(
        "/v1/connections/initiate",
        headers=bearer(KEY_A),
        json={"workspace": True, "provider": "sandbox", "return_to": RETURN_TO},
    )
    assert started.status_code == 200, started.text
    outcome = await callback(stack, await authorize(stack, started.json()["authorize_url"]))
    assert outcome["status"] == "connected", outcome
    return started.json()["connection_id"]


async def test_forcing_the_workspace_connection_serves_and_counts_only_it(
    full_stack, nats_client: Client
) -> None:
    await setup_app(full_stack)
    dora, erin = new_user(), new_user()
    own = (await connect(full_stack, dora))["connection_id"]
    shared = await _connect_workspace(full_stack)
    runner = RunnerClient(nats_client, timeout=20)
    try:

        async def satisfied_for(user: str, expected: bool):
            report = await runner.check(full_stack.tenant_a, user, NEEDS)
            return True if report.is_satisfied == expected else None

        await wait_for_async(lambda: satisfied_for(dora, True))
        assert not (await runner.check(full_stack.tenant_a, erin, NEEDS)).is_satisfied  # no fallback

        app = await _force(full_stack, True)
        assert app["force_workspace_connection"] is True
        assert (await full_stack.client.get("/v1/provider-apps/sandbox", headers=bearer(KEY_A))).json()[
            "force_workspace_connection"
        ]
        # Every user now counts through the workspace connection, and acts through it.
        await wait_for_async(lambda: satisfied_for(erin, True))
        for user in (dora, erin):
            run = await runner.request_run(
                full_stack.tenant_a, f"run-{uuid.uuid4().hex[:8]}", user, APP, NEEDS
            )
            assert isinstance(run, RunAdmitted), run
            resolved = await runner.resolve(grant=run.grant, provider="sandbox")
            assert resolved.connection_id == shared and resolved.connection_id != own

        # The shared connection is revoked: nobody's own connection stands in for it.
        revoked = await full_stack.client.delete(f"/v1/connections/{shared}", headers=bearer(KEY_A))
        assert revoked.status_code == 200, revoked.text
        await wait_for_async(lambda: satisfied_for(dora, False))
        held_id = f"run-{uuid.uuid4().hex[:8]}"
        held = await runner.request_run(full_stack.tenant_a, held_id, dora, APP, NEEDS)
        assert isinstance(held, RunHeld), held

        # Lifting the force (no new grant) lets the user's own count again: the held run is admitted.
        await _force(full_stack, False)
        admitted = await runner.wait_until_admitted(held_id)
        assert admitted.resumed
        resolved = await runner.resolve(grant=admitted.grant, provider="sandbox")
        assert resolved.connection_id == own
    finally:
        await runner.close()
