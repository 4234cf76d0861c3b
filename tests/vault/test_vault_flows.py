"""Exchange, resolve, refresh, revocation against real Postgres, NATS and the sandbox provider."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from fixtures.waiting import wait_for_async
from vault_harness import TENANT, VaultHarness

from grantline.contract import vault as contract
from grantline.contract.errors import ErrorCode, ErrorReply


async def test_exchange_then_resolve_returns_the_sandbox_token(vault: VaultHarness) -> None:
    await vault.put_app("sandbox")
    info = await vault.connect("sandbox", scopes=["profile", "read"])
    assert info.status == "active" and info.is_default and info.account == "alice"
    assert info.scopes == ["profile", "read"]
    reply = await vault.resolve("sandbox", scopes=["read"], app_id="app-1", run_id="run-1", tool="search")
    assert isinstance(reply, contract.ResolveReply)
    assert reply.access_token.get_secret_value().startswith("sbx_at_")
    assert reply.connection_id == info.connection_id
    # An app id resolves through the provider that owns it.
    by_app = await vault.resolve(None, app="sandbox_mail", grant_providers=["sandbox"])
    assert isinstance(by_app, contract.ResolveReply) and by_app.connection_id == info.connection_id


async def test_resolve_errors_are_clear(vault: VaultHarness) -> None:
    await vault.put_app("sandbox")
    nothing = await vault.resolve("sandbox", user="bob")
    assert isinstance(nothing, ErrorReply) and nothing.error.code == ErrorCode.NOT_CONNECTED
    await vault.connect("sandbox", scopes=["read"])
    missing = await vault.resolve("sandbox", scopes=["write"])
    assert isinstance(missing, ErrorReply) and missing.error.code == ErrorCode.MISSING_SCOPES
    raw = await vault.runtime.nats.request(
        f"{contract.SUBJECT_RESOLVE}.{TENANT}", b'{"grant": ""}', timeout=5
    )
    assert ErrorReply.model_validate_json(raw.data).error.code == ErrorCode.INVALID_REQUEST


async def test_vault_refresh_answers_each_case_and_releases_the_lease(vault: VaultHarness) -> None:
    await vault.put_app("sandbox")
    info = await vault.connect("sandbox")

    async def refresh(before: datetime | None = None) -> contract.RefreshReply | ErrorReply:
        request = contract.RefreshRequest(
            tenant_id=TENANT, connection_id=info.connection_id, only_if_expiring_before=before
        )
        return await vault.call(contract.SUBJECT_REFRESH, request, contract.RefreshReply)

    raw = await vault.runtime.nats.request(contract.SUBJECT_REFRESH, b'{"tenant_id": 1}', timeout=5)
    assert ErrorReply.model_validate_json(raw.data).error.code == ErrorCode.INVALID_REQUEST
    unknown = await vault.call(
        contract.SUBJECT_REFRESH,
        contract.RefreshRequest(tenant_id=TENANT, connection_id="conn_missing"),
        contract.RefreshReply,
    )
    assert isinstance(unknown, ErrorReply) and unknown.error.code == ErrorCode.NOT_FOUND

    # The refresher's early refresh: only when the token expires before the bound it names.
    not_yet = await refresh(datetime.now(UTC))
    assert isinstance(not_yet, contract.RefreshReply) and not not_yet.refreshed
    due = await refresh(datetime.now(UTC) + timedelta(days=1))
    assert isinstance(due, contract.RefreshReply) and due.refreshed
    assert due.expires_at is not None and due.expires_at > datetime.now(UTC)

    # Every answer above released the lease: this replica (or any other) can refresh at once.
    again = await refresh()
    assert isinstance(again, contract.RefreshReply) and again.refreshed
    assert vault.sandbox.refresh_grants("standard") == 2

    # Disabling the app revokes the connections made with it: refused, and still after re-enabling.
    await vault.put_app("sandbox", enabled=False)
    disabled = await refresh()
    assert isinstance(disabled, ErrorReply) and disabled.error.code == ErrorCode.REVOKED
    await vault.put_app("sandbox", enabled=True)
    still = await refresh()
    assert isinstance(still, ErrorReply) and still.error.code == ErrorCode.REVOKED
    assert vault.sandbox.refresh_grants("standard") == 2


async def test_reauthorization_keeps_id_and_name_and_unions_scopes(vault: VaultHarness) -> None:
    await vault.put_app("sandbox")
    first = await vault.connect("sandbox", scopes=["read"])
    again = await vault.connect("sandbox", scopes=["write"])
    assert again.connection_id == first.connection_id and again.name == first.name
    assert set(again.scopes) == {"read", "write"}
    other_account = await vault.connect("sandbox", scopes=["read"], subject="alice-work")
    assert other_account.connection_id != first.connection_id and not other_account.is_default


async def test_workspace_fallback_only_when_the_app_allows_it(vault: VaultHarness) -> None:
    await vault.put_app("sandbox", fallback=False)
    shared = await vault.connect("sandbox", owner="workspace", subject="team")
    denied = await vault.resolve("sandbox", user="carol")
    assert isinstance(denied, ErrorReply) and denied.error.code == ErrorCode.NOT_CONNECTED
    await vault.put_app("sandbox", fallback=True)
    reply = await vault.resolve("sandbox", user="carol")
    assert isinstance(reply, contract.ResolveReply) and reply.connection_id == shared.connection_id


async def test_a_forced_workspace_connection_serves_users_who_have_their_own(vault: VaultHarness) -> None:
    await vault.put_app("sandbox", force_workspace_connection=True)
    own = await vault.connect("sandbox", user="dora", subject="dora")
    # Forced before the workspace has connected: users' own serve until it has (satisfaction, which
    # learns of the force from the workspace connection's events, counts them the same way).
    before = await vault.resolve("sandbox", user="dora")
    assert isinstance(before, contract.ResolveReply) and before.connection_id == own.connection_id
    shared = await vault.connect("sandbox", owner="workspace", subject="service-account")
    for user in ("dora", "erin"):  # with or without their own
        reply = await vault.resolve("sandbox", user=user)
        assert isinstance(reply, contract.ResolveReply) and reply.connection_id == shared.connection_id
    # Unforced again: the user's own comes first, and without fallback nobody else is served.
    await vault.put_app("sandbox")
    mine = await vault.resolve("sandbox", user="dora")
    assert isinstance(mine, contract.ResolveReply) and mine.connection_id == own.connection_id
    other = await vault.resolve("sandbox", user="erin")
    assert isinstance(other, ErrorReply) and other.error.code == ErrorCode.NOT_CONNECTED


async def test_fifty_concurrent_resolves_of_an_expired_token_refresh_once(vault: VaultHarness) -> None:
    await vault.put_app("sandbox")
    info = await vault.connect("sandbox")
    old = await vault.token()
    await vault.expire(info.connection_id)
    replies = await asyncio.gather(*(vault.resolve("sandbox") for _ in range(50)))
    tokens = {r.access_token.get_secret_value() for r in replies if isinstance(r, contract.ResolveReply)}
    assert len(tokens) == 1 and old not in tokens, replies[:3]
    assert vault.sandbox.refresh_grants("standard") == 1


async def test_two_replicas_share_one_refresh_through_the_lease(vault: VaultHarness) -> None:
    from grantline.vault.service.refresh import Refresher

    await vault.put_app("sandbox_rotating")
    info = await vault.connect("sandbox_rotating")
    await vault.expire(info.connection_id)
    ctx = vault.ctx
    other = Refresher(type(ctx)(**{**ctx.__dict__, "instance_id": "replica-b"}))
    mine = Refresher(ctx)
    outcomes = await asyncio.gather(
        mine.refresh(TENANT, info.connection_id), other.refresh(TENANT, info.connection_id)
    )
    assert sum(o.refreshed for o in outcomes) == 1 and all(o.error is None for o in outcomes)
    assert vault.sandbox.refresh_grants("rotating") == 1


async def test_rotated_refresh_token_is_never_lost(vault: VaultHarness) -> None:
    await vault.put_app("sandbox_rotating")
    info = await vault.connect("sandbox_rotating")
    seen = set()
    for _ in range(3):
        await vault.expire(info.connection_id)
        seen.add(await vault.token("sandbox_rotating"))
    # Each refresh used the newest refresh token: a lost rotation would have been invalid_grant.
    assert len(seen) == 3
    assert vault.sandbox.refresh_grants("rotating") == 3
    counts = vault.sandbox.state.refresh_counts
    assert all(count == 1 for count in counts.values())


async def test_invalid_grant_marks_reauth_required_after_one_attempt(vault: VaultHarness) -> None:
    await vault.put_app("sandbox")
    info = await vault.connect("sandbox")
    vault.sandbox.state.revoke_subject("alice")  # the user revoked us at the provider
    await vault.expire(info.connection_id)
    reply = await vault.resolve("sandbox")
    assert isinstance(reply, ErrorReply) and reply.error.code == ErrorCode.REAUTH_REQUIRED
    assert vault.sandbox.refresh_grants("standard") == 1
    again = await vault.resolve("sandbox")
    assert isinstance(again, ErrorReply) and again.error.code == ErrorCode.REAUTH_REQUIRED
    assert vault.sandbox.refresh_grants("standard") == 1
    rows = await vault.sql("SELECT status, access_token, refresh_token FROM vault.connections")
    assert rows == [("reauth_required", None, None)]


async def test_non_expiring_tokens_are_never_refreshed(vault: VaultHarness) -> None:
    await vault.put_app("sandbox_github")
    info = await vault.connect("sandbox_github")
    assert info.expires_at is None
    for _ in range(3):
        await vault.token("sandbox_github")
    assert vault.sandbox.refresh_grants("github") == 0


async def test_revocation_deletes_secrets_fails_next_resolve_and_tells_the_provider(
    vault: VaultHarness,
) -> None:
    await vault.put_app("sandbox")
    info = await vault.connect("sandbox")
    await vault.token()
    reply = await vault.call(
        contract.SUBJECT_REVOKE,
        contract.RevokeRequest(tenant_id=TENANT, connection_id=info.connection_id, reason="user"),
        contract.OkReply,
    )
    assert isinstance(reply, contract.OkReply)
    after = await vault.resolve("sandbox")
    assert isinstance(after, ErrorReply) and after.error.code == ErrorCode.REVOKED
    assert len(vault.sandbox.requests_to("revoke", "standard")) == 1
    rows = await vault.sql("SELECT status, access_token, refresh_token, id_token FROM vault.connections")
    assert rows == [("revoked", None, None, None)]


async def test_revocation_survives_a_provider_that_is_down(vault: VaultHarness) -> None:
    """The secret goes at once; the provider call is kept (sealed) and retried until it is confirmed."""
    from grantline.sandbox import Fault
    from grantline.vault.service.revocation import retry_due_revocations

    await vault.put_app("sandbox")
    info = await vault.connect("sandbox")
    (sealed_refresh,) = await vault.sql("SELECT refresh_token FROM vault.connections")
    outage = vault.sandbox.state.add_fault(Fault(endpoint="revoke", status=503))
    reply = await vault.call(
        contract.SUBJECT_REVOKE,
        contract.RevokeRequest(tenant_id=TENANT, connection_id=info.connection_id, reason="admin"),
        contract.OkReply,
    )
    assert isinstance(reply, contract.OkReply)
    rows = await vault.sql("SELECT status, access_token, refresh_token FROM vault.connections")
    assert rows == [("revoked", None, None)]
    pending = await vault.sql(
        "SELECT attempts, sealed_token, field, next_attempt_at > now() FROM vault.pending_revocations"
    )
    # Kept sealed exactly as it was in the connection (no token in clear), due after a backoff.
    assert pending == [(1, sealed_refresh[0], "refresh_token", True)]
    assert b"sbx_" not in bytes(pending[0][1])

    async def due_now() -> None:
        await vault.sql("UPDATE vault.pending_revocations SET next_attempt_at = now() RETURNING id")

    await due_now()
    assert await retry_due_revocations(vault.ctx) == 1  # still down: kept, pushed further out
    assert await vault.sql("SELECT attempts FROM vault.pending_revocations") == [(2,)]
    assert await retry_due_revocations(vault.ctx) == 0  # not due yet

    assert outage.id is not None and vault.sandbox.state.faults.remove(outage.id)
    before = len(vault.sandbox.requests_to("revoke", "standard"))
    await due_now()
    assert await retry_due_revocations(vault.ctx) == 1
    told = vault.sandbox.requests_to("revoke", "standard")[before:]
    assert len(told) == 1 and told[0].body["token_type_hint"] == "refresh_token"
    assert told[0].body["token"].startswith("sbx_rt_")
    assert await vault.sql("SELECT id FROM vault.pending_revocations") == []


async def test_revocation_retries_give_up_after_the_limit(vault: VaultHarness) -> None:
    from grantline.sandbox import Fault
    from grantline.vault.service.revocation import retry_due_revocations

    await vault.put_app("sandbox")
    info = await vault.connect("sandbox")
    vault.sandbox.state.add_fault(Fault(endpoint="revoke", status=503))
    await vault.call(
        contract.SUBJECT_REVOKE,
        contract.RevokeRequest(tenant_id=TENANT, connection_id=info.connection_id, reason="admin"),
        contract.OkReply,
    )
    before = len(vault.sandbox.requests_to("revoke", "standard"))
    await vault.sql(
        "UPDATE vault.pending_revocations SET next_attempt_at = now(), attempts = :n RETURNING id",
        n=vault.ctx.settings.revoke_max_attempts,
    )
    assert await retry_due_revocations(vault.ctx) == 1
    assert len(vault.sandbox.requests_to("revoke", "standard")) == before  # not called again
    assert await vault.sql("SELECT id FROM vault.pending_revocations") == []


async def test_a_refresh_that_loses_its_fence_answers_with_the_connection_as_it_now_is(
    vault: VaultHarness,
) -> None:
    """Another replica taking over mid-refresh is not a revocation: the refresher must keep scheduling."""
    from grantline.sandbox.faults import Fault
    from grantline.vault.service.refresh import Refresher

    await vault.put_app("sandbox")
    info = await vault.connect("sandbox")
    await vault.expire(info.connection_id)
    vault.sandbox.state.add_fault(Fault(endpoint="token", grant_type="refresh_token", delay_ms=1500, times=1))
    refreshing = asyncio.ensure_future(Refresher(vault.ctx).refresh(TENANT, info.connection_id))

    async def provider_was_asked() -> bool:
        return vault.sandbox.refresh_grants("standard") >= 1 or bool(
            vault.sandbox.requests_to("token", "standard")[1:]
        )

    await wait_for_async(provider_was_asked, timeout=10)
    # While the provider answers, the fence moves (as when the lease lapsed and another replica won).
    await vault.sql(
        "UPDATE vault.connections SET version = version + 1 WHERE id = :id", id=info.connection_id
    )
    outcome = await refreshing
    assert outcome.refreshed is False
    assert outcome.error is None, outcome.error

    # The same race against a revocation is a revocation. (The lost lease would lapse by itself;
    # clear it rather than wait.)
    await vault.sql(
        "UPDATE vault.connections SET lease_owner = NULL, lease_expires_at = NULL WHERE id = :id",
        id=info.connection_id,
    )
    await vault.expire(info.connection_id)
    vault.sandbox.state.add_fault(Fault(endpoint="token", grant_type="refresh_token", delay_ms=1500, times=1))
    refreshing = asyncio.ensure_future(Refresher(vault.ctx).refresh(TENANT, info.connection_id))
    await wait_for_async(lambda: len(vault.sandbox.requests_to("token", "standard")) >= 3, timeout=10)
    await vault.sql(
        "UPDATE vault.connections SET version = version + 1, status = 'revoked' WHERE id = :id",
        id=info.connection_id,
    )
    outcome = await refreshing
    assert outcome.error is not None and outcome.error.error.code == ErrorCode.REVOKED
