"""Step-up reaches satisfaction: a server's `insufficient_scope` holds runs needing the scope until the
user re-authorizes the same connection.

Everything real: the gateway, the vault and satisfaction on NATS and Postgres, the sandbox provider.
Satisfaction learns of the mark only from the vault's `connections.scopes_missing`, and of the
re-authorization only from its `connections.granted`. The scope is one the connection was granted:
the server's word beats the record, so without the event satisfaction would still count it.
"""

from __future__ import annotations

import uuid

from fixtures.waiting import wait_for_async
from gateway_flow import authorize, callback, connect, setup_app, start
from gateway_support import KEY_A, bearer, new_user
from nats.aio.client import Client
from pydantic import SecretStr

from grantline.contract import RunAdmitted, RunHeld, vault
from grantline.contract.envelope import tenant_scoped
from grantline.contract.errors import ErrorReply
from grantline.runner import RunnerClient
from grantline.runtime.nats.secret_wire import request_with_secrets

APP = "step-up-assistant"
NEEDS_READ = [{"type": "specific", "id": "sandbox", "scopes": ["read"]}]
NEEDS_PROFILE = [{"type": "specific", "id": "sandbox", "scopes": ["profile"]}]


async def _report(
    stack, grant: str, connection_id: str, scopes: list[str]
) -> vault.ResolveReply | ErrorReply:
    return await request_with_secrets(
        stack.vault.nats,
        tenant_scoped(vault.SUBJECT_REPORT, stack.tenant_a),
        vault.ReportRequest(
            grant=SecretStr(grant),
            provider="sandbox",
            connection_id=connection_id,
            kind="insufficient_scope",
            scopes=scopes,
        ),
        vault.ResolveReply,
        timeout=15,
    )


async def test_missing_scopes_hold_runs_needing_them_until_the_user_reauthorizes(
    full_stack, nats_client: Client
) -> None:
    await setup_app(full_stack)
    user = new_user()
    connection_id = (await connect(full_stack, user))["connection_id"]
    runner = RunnerClient(nats_client, timeout=20)
    try:

        async def satisfied():  # once the mirror heard of the grant
            return (await runner.check(full_stack.tenant_a, user, NEEDS_READ)).is_satisfied or None

        await wait_for_async(satisfied)
        run = await runner.request_run(
            full_stack.tenant_a, f"run-{uuid.uuid4().hex[:8]}", user, APP, NEEDS_READ
        )
        assert isinstance(run, RunAdmitted), run
        resolved = await runner.resolve(grant=run.grant, provider="sandbox", scopes=["read"])
        assert "read" in resolved.scopes

        # The API answers 403 insufficient_scope for "read": the runner reports it with the run's grant.
        reported = await _report(full_stack, run.grant, connection_id, ["read"])
        assert isinstance(reported, ErrorReply) and reported.error.code == "missing_scopes"
        connection = await full_stack.client.get(f"/v1/connections/{connection_id}", headers=bearer(KEY_A))
        assert connection.json()["missing_scopes"] == ["read"]
        # The vault no longer hands out a token for "read", nor says the connection holds it.
        refused = await request_with_secrets(
            full_stack.vault.nats,
            tenant_scoped(vault.SUBJECT_RESOLVE, full_stack.tenant_a),
            vault.ResolveRequest(grant=SecretStr(run.grant), provider="sandbox", scopes=["read"]),
            vault.ResolveReply,
            timeout=15,
        )
        assert isinstance(refused, ErrorReply) and refused.error.code == "missing_scopes"

        async def reported_missing():
            report = await runner.check(full_stack.tenant_a, user, NEEDS_READ)
            return report if not report.is_satisfied else None

        report = await wait_for_async(reported_missing)
        (status,) = report.requirements
        assert status.missing_scopes == ["read"]  # "re-authorize", not "connect"
        # What the connection still holds keeps counting.
        assert (await runner.check(full_stack.tenant_a, user, NEEDS_PROFILE)).is_satisfied

        held_id = f"run-{uuid.uuid4().hex[:8]}"
        held = await runner.request_run(full_stack.tenant_a, held_id, user, APP, NEEDS_READ)
        assert isinstance(held, RunHeld), held

        # The user re-authorizes the same connection with the scope: the held run is admitted by itself.
        again = await start(full_stack, user, connection_id=connection_id, scopes=["read"])
        outcome = await callback(full_stack, await authorize(full_stack, again["authorize_url"]))
        assert outcome["status"] == "connected" and again["connection_id"] == connection_id
        resumed = await runner.wait_until_admitted(held_id)
        assert resumed.resumed
        connection = await full_stack.client.get(f"/v1/connections/{connection_id}", headers=bearer(KEY_A))
        assert connection.json()["missing_scopes"] == []
        assert (await runner.check(full_stack.tenant_a, user, NEEDS_READ)).is_satisfied
    finally:
        await runner.close()
