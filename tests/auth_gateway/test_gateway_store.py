"""The gateway's SQL on psycopg, in pipelined transactions like ``runtime.driver_transaction`` or in
autocommit like ``runtime.single_statement``: what the API tests do not reach (the guarded
credential lookup, concurrent counts, the state's row lock, replays, SQL NULL for an unlimited
connect session, tenant isolation)."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from psycopg import errors
from pydantic import SecretStr

from grantline.auth_gateway.adapters import flow_store, rate_limit_store, tenant_store, webhook_store
from grantline.auth_gateway.adapters.rate_limit_store import Exhausted, Guard
from grantline.auth_gateway.domain.credentials import credential_hash, key_hint, new_api_key
from grantline.auth_gateway.domain.oauth_state import new_pending_authorization
from grantline.runtime.db.driver import DriverConnection

WINDOW = 600


@asynccontextmanager
async def unit_of_work(database_url: str) -> AsyncIterator[DriverConnection]:
    # As DriverPool.transaction: pipeline mode, commit at the end (results are there only once read).
    async with await psycopg.AsyncConnection.connect(database_url) as conn, conn.pipeline():
        yield conn
        await conn.commit()


@asynccontextmanager
async def single_statement(database_url: str) -> AsyncIterator[DriverConnection]:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        yield conn


async def tenant_with_key(database_url: str, name: str) -> tuple[tenant_store.Tenant, str, str]:
    """A tenant, one of its keys and that key's id."""
    key = new_api_key()
    async with unit_of_work(database_url) as conn:
        tenant = await tenant_store.insert_tenant(
            conn, name=name, return_to_allow_list=[f"https://{name}.test"]
        )
        key_id = await tenant_store.insert_api_key(
            conn, tenant_id=tenant.tenant_id, key_hash=credential_hash(key), hint=key_hint(key)
        )
    return tenant, key, key_id


def guards(address: str, prefix: str, *, allowed: int = 2) -> list[Guard]:
    return [
        Guard(f"test_address:{address}", WINDOW, allowed),
        Guard(f"test_prefix:{prefix}", WINDOW, allowed),
    ]


async def test_a_guarded_key_lookup_reads_the_key_until_a_guard_is_used_up(database_url: str) -> None:
    tenant, key, key_id = await tenant_with_key(database_url, "acme")
    hashed = credential_hash(key)
    async with single_statement(database_url) as conn:
        found = await tenant_store.api_key_by_hash(conn, hashed, unless_exhausted=guards("a1", "p1"))
        assert found is not None and (found.key_id, found.tenant_id, found.revoked_at) == (
            key_id,
            tenant.tenant_id,
            None,
        )
        unknown = credential_hash(new_api_key())
        assert await tenant_store.api_key_by_hash(conn, unknown, unless_exhausted=guards("a1", "p1")) is None

        # The prefix guard (the second) used up: refused, with the seconds left in its window.
        for _ in range(2):
            await rate_limit_store.count(conn, "test_prefix:p1", WINDOW)
        with pytest.raises(Exhausted) as refused:
            await tenant_store.api_key_by_hash(conn, hashed, unless_exhausted=guards("a1", "p1"))
        assert refused.value.guard == 1 and 1 <= refused.value.seconds_left <= WINDOW
        # Both used up: the first guard given is the one that refuses.
        for _ in range(2):
            await rate_limit_store.count(conn, "test_address:a1", WINDOW)
        with pytest.raises(Exhausted) as refused:
            await tenant_store.api_key_by_hash(conn, hashed, unless_exhausted=guards("a1", "p1"))
        assert refused.value.guard == 0
        # Another address and prefix are not affected; one hit short of the limit is not refused.
        await rate_limit_store.count(conn, "test_address:a2", WINDOW)
        assert await tenant_store.api_key_by_hash(conn, hashed, unless_exhausted=guards("a2", "p2"))
        # Without guards, or with a guard that allows more, the key is read as ever.
        assert await tenant_store.api_key_by_hash(conn, hashed) == found
        assert await tenant_store.api_key_by_hash(
            conn, hashed, unless_exhausted=guards("a1", "p1", allowed=3)
        )


async def test_guards_alone_refuse_in_order_and_read_nothing_when_none_is_used_up(database_url: str) -> None:
    async with single_statement(database_url) as conn:
        await rate_limit_store.refuse_if_exhausted(conn, [])
        await rate_limit_store.refuse_if_exhausted(conn, guards("a3", "p3"))
        for _ in range(2):
            await rate_limit_store.count(conn, "test_prefix:p3", WINDOW)
        with pytest.raises(Exhausted) as refused:
            await rate_limit_store.refuse_if_exhausted(conn, guards("a3", "p3"))
        assert refused.value.guard == 1
        assert (await rate_limit_store.current(conn, "test_prefix:p3", WINDOW)).hits == 2
        assert (await rate_limit_store.current(conn, "test_address:a3", WINDOW)).hits == 0


async def test_concurrent_counts_lose_no_hit_and_a_passed_window_counts_from_one(database_url: str) -> None:
    async def one_hit() -> int:
        async with single_statement(database_url) as conn:
            return (await rate_limit_store.count(conn, "test_burst:x", WINDOW)).hits

    hits = await asyncio.gather(*(one_hit() for _ in range(25)))
    assert sorted(hits) == list(range(1, 26))
    async with single_statement(database_url) as conn:
        current = await rate_limit_store.current(conn, "test_burst:x", WINDOW)
        assert current.hits == 25 and 1 <= current.seconds_left <= WINDOW
        await conn.execute(
            "UPDATE gateway.rate_limits SET window_start = window_start - interval '1 hour'"
            " WHERE bucket = 'test_burst:x'"
        )
        assert (await rate_limit_store.current(conn, "test_burst:x", WINDOW)).hits == 0
        assert (await rate_limit_store.count(conn, "test_burst:x", WINDOW)).hits == 1
        forgotten = await rate_limit_store.delete_expired(conn, before=datetime.now(UTC) + timedelta(hours=2))
    assert forgotten == 1


async def test_connect_sessions_keep_sql_null_for_every_provider_and_their_link_is_used_once(
    database_url: str,
) -> None:
    tenant, _key, _ = await tenant_with_key(database_url, "acme")
    now = datetime.now(UTC)
    unlimited = flow_store.ConnectSession("cs_all", tenant.tenant_id, "u1", now + timedelta(hours=1))
    scoped = flow_store.ConnectSession(
        "cs_scoped",
        tenant.tenant_id,
        "u2",
        now + timedelta(hours=1),
        providers=("github", "slack"),
        run_id="run-1",
        provider_apps=(("github", "shop-b"),),
    )
    async with unit_of_work(database_url) as conn:
        await flow_store.insert_connect_session(conn, token_hash="h-all", record=unlimited, now=now)
        await flow_store.insert_connect_session(conn, token_hash="h-scoped", record=scoped, now=now)
    async with single_statement(database_url) as conn:
        nulls = await (
            await conn.execute(
                "SELECT providers IS NULL, provider_apps IS NULL FROM gateway.connect_sessions"
                " WHERE session_id = 'cs_all'"
            )
        ).fetchone()
        assert nulls == (True, True)
        assert await flow_store.connect_session_by_hash(conn, "h-all") == unlimited
        assert await flow_store.connect_session_by_hash(conn, "h-scoped") == scoped
        assert (
            await flow_store.connect_session_by_hash(conn, "h-scoped", unless_exhausted=guards("a", "p"))
            == scoped
        )
        assert (
            await flow_store.connect_session_by_hash(conn, "h-none", unless_exhausted=guards("a", "p"))
            is None
        )
        for _ in range(2):
            await rate_limit_store.count(conn, "test_address:a", WINDOW)
        with pytest.raises(Exhausted):
            await flow_store.connect_session_by_hash(conn, "h-scoped", unless_exhausted=guards("a", "p"))

        assert await flow_store.use_connect_link(conn, "cs_scoped", now=now) == scoped.expires_at
        assert await flow_store.use_connect_link(conn, "cs_scoped", now=now) is None
        assert (await flow_store.connect_session_by_hash(conn, "h-scoped") or scoped).link_used
        # An expired session's link is not used.
        assert await flow_store.use_connect_link(conn, "cs_all", now=now + timedelta(hours=2)) is None
        assert await flow_store.delete_expired_connect_sessions(conn, before=now + timedelta(hours=2)) == 2


def pending_flow(tenant_id: str, now: datetime, *, ttl: timedelta = timedelta(minutes=10)):  # type: ignore[no-untyped-def]
    return new_pending_authorization(
        state_hash=secrets.token_hex(32),
        tenant_id=tenant_id,
        owner="user:u1",
        provider="sandbox",
        connection_id=str(uuid.uuid4()),
        scopes=["read", "write"],
        redirect_uri="https://gw.test/v1/oauth/callback",
        return_to="https://acme.test/done",
        code_verifier=SecretStr("verifier-0123456789"),
        now=now,
        ttl=ttl,
    )


async def test_a_state_is_row_locked_while_claimed_and_consumed_once(database_url: str) -> None:
    tenant, _key, _ = await tenant_with_key(database_url, "acme")
    now = datetime.now(UTC)
    pending = pending_flow(tenant.tenant_id, now)
    expired = pending_flow(tenant.tenant_id, now - timedelta(hours=1))
    async with unit_of_work(database_url) as conn:
        for flow in (pending, expired):
            await flow_store.insert_pending(
                conn, flow, reauthorize=False, name="Work", settings={"shop": "a"}, provider_app="shop-b"
            )

    async with unit_of_work(database_url) as claiming:
        stored = await flow_store.pending_by_hash(claiming, pending.state_hash, lock=True)
        assert stored is not None and stored.pending == pending
        assert (stored.name, stored.settings, stored.provider_app, stored.reauthorize) == (
            "Work",
            {"shop": "a"},
            "shop-b",
            False,
        )
        # A second callback with the same state waits for the lock (here: gives up at once).
        async with await psycopg.AsyncConnection.connect(database_url) as racing:
            await racing.execute("SET lock_timeout = '50ms'")
            with pytest.raises(errors.LockNotAvailable):
                await flow_store.pending_by_hash(racing, pending.state_hash, lock=True)
        assert await flow_store.consume_pending(claiming, pending.state_hash, now=now)

    async with single_statement(database_url) as conn:
        assert not await flow_store.consume_pending(conn, pending.state_hash, now=now)
        used = await flow_store.pending_by_hash(conn, pending.state_hash)
        assert used is not None and used.pending.used_at == now and used.pending.code_verifier is None
        assert not await flow_store.consume_pending(conn, expired.state_hash, now=now)
        assert await flow_store.pending_by_hash(conn, "no-such-state") is None
        assert await flow_store.delete_expired_pending(conn, before=now) == 1
        assert await flow_store.pending_by_hash(conn, pending.state_hash) is not None


async def test_a_delivery_is_recorded_once_per_app_by_its_id_or_its_body(database_url: str) -> None:
    async def record(conn: DriverConnection, app: str, delivery_id: str, body: str) -> bool:
        return await webhook_store.record_delivery(
            conn,
            provider="github",
            provider_app_id=app,
            delivery_id=delivery_id,
            body_sha256=body,
            tenant_id=None,
            kind="push",
        )

    async with unit_of_work(database_url) as conn:
        assert await record(conn, "app-1", "d-1", "body-1")
        assert not await record(conn, "app-1", "d-1", "body-2")  # same id
        assert not await record(conn, "app-1", "d-2", "body-1")  # a replay under a new id
        assert await record(conn, "app-2", "d-1", "body-1")  # another app's delivery
        assert await webhook_store.delivery_seen(conn, "github", "app-1", "d-9", "body-1")
        assert await webhook_store.delivery_seen(conn, "github", "app-1", "d-1", "body-9")
        assert not await webhook_store.delivery_seen(conn, "github", "app-3", "d-1", "body-1")
        assert not await webhook_store.delivery_seen(conn, "slack", "app-1", "d-1", "body-1")
    async with single_statement(database_url) as conn:
        assert (
            await webhook_store.delete_old_deliveries(conn, before=datetime.now(UTC) - timedelta(days=1)) == 0
        )
        assert (
            await webhook_store.delete_old_deliveries(conn, before=datetime.now(UTC) + timedelta(days=1)) == 2
        )


async def test_tenants_and_keys_stay_within_their_tenant(database_url: str) -> None:
    acme, acme_key, acme_key_id = await tenant_with_key(database_url, "acme")
    other, _other_key, other_key_id = await tenant_with_key(database_url, "other")
    async with unit_of_work(database_url) as conn:
        # The same key stored again keeps its id and its tenant.
        again = await tenant_store.insert_api_key(
            conn, tenant_id=other.tenant_id, key_hash=credential_hash(acme_key), hint=key_hint(acme_key)
        )
        await tenant_store.set_allow_list(conn, acme.tenant_id, ["https://new.acme.test"])
    assert again == acme_key_id
    async with single_statement(database_url) as conn:
        assert [k.key_id for k in await tenant_store.list_api_keys(conn, acme.tenant_id)] == [acme_key_id]
        assert [k.key_id for k in await tenant_store.list_api_keys(conn, other.tenant_id)] == [other_key_id]
        assert await tenant_store.tenant_by_id(conn, acme.tenant_id) == tenant_store.Tenant(
            acme.tenant_id, "acme", ["https://new.acme.test"]
        )
        assert await tenant_store.tenant_by_name(conn, "other") == other
        assert await tenant_store.tenant_by_name(conn, "nobody") is None
        assert await tenant_store.revoke_api_key(conn, other_key_id) == other.tenant_id
        assert await tenant_store.revoke_api_key(conn, other_key_id) is None
        revoked = await tenant_store.list_api_keys(conn, other.tenant_id)
        assert revoked[0].revoked_at is not None
        assert (await tenant_store.list_api_keys(conn, acme.tenant_id))[0].revoked_at is None


async def test_legacy_tenant_providers_are_read_in_order_and_forgotten_one_by_one(database_url: str) -> None:
    acme, _, _ = await tenant_with_key(database_url, "acme")
    other, _, _ = await tenant_with_key(database_url, "other")
    async with unit_of_work(database_url) as conn:
        for tenant_id in (acme.tenant_id, other.tenant_id):
            for provider in ("zeta", "alpha"):
                await conn.execute(
                    "INSERT INTO gateway.tenant_providers (tenant_id, provider, definition)"
                    " VALUES (%s, %s, %s::jsonb)",
                    (tenant_id, provider, f'{{"id": "{provider}"}}'),
                )
    async with single_statement(database_url) as conn:
        rows = await tenant_store.legacy_tenant_providers(conn, limit=10)
        assert rows == sorted(rows) and len(rows) == 4 and rows[0][2] == {"id": "alpha"}
        assert len(await tenant_store.legacy_tenant_providers(conn, limit=3)) == 3
        await tenant_store.forget_legacy_tenant_provider(conn, acme.tenant_id, "alpha")
        left = [
            (tenant, provider)
            for tenant, provider, _ in await tenant_store.legacy_tenant_providers(conn, limit=10)
        ]
    assert (acme.tenant_id, "alpha") not in left and (other.tenant_id, "alpha") in left and len(left) == 3


@pytest.mark.parametrize(
    ("statement", "credential", "table"),
    [
        (tenant_store._GUARDED_API_KEY, {"key_hash": "0" * 64}, "api_keys"),
        (flow_store._GUARDED_CONNECT_SESSION, {"token_hash": "0" * 64}, "connect_sessions"),
    ],
)
async def test_a_refused_request_does_not_look_at_its_credential(
    database_url: str, statement: str, credential: dict[str, str], table: str
) -> None:
    # What docs/auth-gateway.md promises: over the limit, a right guess teaches nothing.
    params = {**credential, **rate_limit_store.guard_parameters(guards("a4", "p4", allowed=1))}
    async with single_statement(database_url) as conn:

        async def credential_scan() -> str:
            plan = await (await conn.execute("EXPLAIN (ANALYZE, COSTS OFF) " + statement, params)).fetchall()
            [scan] = [line for (line,) in plan if f" on {table} " in line]
            return scan

        assert "never executed" not in await credential_scan()
        await rate_limit_store.count(conn, "test_address:a4", WINDOW)
        assert "never executed" in await credential_scan()
