"""The vault's repository SQL on psycopg, each in a pipelined transaction like
``runtime.driver_transaction``: tenant isolation, row locks, conflicts and orderings that the flows
through NATS do not pin down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from grantline.runtime.db.driver import DriverConnection
from grantline.vault.adapters import connection_repository as connection_rows
from grantline.vault.adapters import pending_revocation_rows as pending_rows
from grantline.vault.adapters import provider_app_repository as app_rows
from grantline.vault.adapters import tenant_provider_repository as tenant_provider_rows
from grantline.vault.adapters.finished_run_store import add_finished, forget_finished_before
from grantline.vault.adapters.pending_revocation_rows import RevocationBinding
from grantline.vault.adapters.provider_app_repository import PLATFORM


@asynccontextmanager
async def unit_of_work(database_url: str) -> AsyncIterator[DriverConnection]:
    # As DriverPool.transaction: pipeline mode, commit at the end (results are there only once read).
    async with await psycopg.AsyncConnection.connect(database_url) as conn, conn.pipeline():
        yield conn
        await conn.commit()


def connection(connection_id: str, **values: Any) -> dict[str, Any]:
    return {
        "id": connection_id,
        "tenant_id": "t-1",
        "owner": "user:alice",
        "provider": "sandbox",
        "auth_kind": "oauth2",
        "status": "active",
        "scopes": ["read"],
        "settings": {},
        "provider_definition": None,
        "access_token": b"\x01sealed-access",
        **values,
    }


async def insert_connections(database_url: str, *rows: dict[str, Any]) -> None:
    async with unit_of_work(database_url) as conn:
        for row in rows:
            await connection_rows.insert(conn, row)


async def test_a_connection_is_read_and_changed_only_under_its_own_tenant(database_url: str) -> None:
    await insert_connections(database_url, connection("c-1"), connection("c-2", tenant_id="t-2"))
    async with unit_of_work(database_url) as conn:
        assert await connection_rows.get(conn, "t-2", "c-1") is None
        mine = await connection_rows.get(conn, "t-1", "c-1")
        assert mine is not None and (mine.tenant_id, mine.scopes, mine.settings) == ("t-1", ["read"], {})
        assert mine.access_token == b"\x01sealed-access" and "sealed" not in repr(mine)
        # A catalogue provider's definition is kept as JSON null, as SQLAlchemy's JSONB type wrote it.
        json_type = "SELECT jsonb_typeof(provider_definition) FROM vault.connections WHERE id = 'c-1'"
        [(stored,)] = await (await conn.execute(json_type)).fetchall()
        assert stored == "null" and mine.provider_definition is None
        assert not await connection_rows.delete_revoked(conn, "t-1", "c-1")  # still active
        await connection_rows.update_row(conn, "c-1", {"status": "revoked", **connection_rows.NO_SECRETS})
        assert not await connection_rows.delete_revoked(conn, "t-2", "c-1")  # another tenant's
        assert await connection_rows.delete_revoked(conn, "t-1", "c-1")
        [(left,)] = await (await conn.execute("SELECT count(*) FROM vault.connections")).fetchall()
    assert left == 1


async def test_update_row_bumps_the_fencing_version_and_keeps_json_columns_json(database_url: str) -> None:
    await insert_connections(database_url, connection("c-1"))
    async with unit_of_work(database_url) as conn:
        await connection_rows.update_row(
            conn, "c-1", {"settings": {"site": "acme"}, "provider_definition": {"id": "own"}}
        )
        row = await (
            await conn.execute("SELECT version, settings, provider_definition FROM vault.connections")
        ).fetchone()
    assert row == (2, {"site": "acme"}, {"id": "own"})


async def test_a_locked_connection_waits_for_its_transaction(database_url: str) -> None:
    await insert_connections(database_url, connection("c-1"))
    async with unit_of_work(database_url) as holder:
        assert await connection_rows.get(holder, "t-1", "c-1", for_update=True) is not None
        async with await psycopg.AsyncConnection.connect(database_url) as other:
            with pytest.raises(psycopg.errors.LockNotAvailable):
                await other.execute("SELECT 1 FROM vault.connections WHERE id = 'c-1' FOR UPDATE NOWAIT")


async def test_find_by_account_matches_settings_and_the_named_app(database_url: str) -> None:
    await insert_connections(
        database_url,
        connection("c-default", account="acct-1"),
        connection("c-named", account="acct-1", provider_app="second"),
        connection("c-site", account="acct-1", settings={"site": "acme"}),
        connection("c-bob", account="acct-1", owner="user:bob"),
    )
    async with unit_of_work(database_url) as conn:
        found = await connection_rows.find_by_account(conn, "t-1", "user:alice", "sandbox", "acct-1")
        named = await connection_rows.find_by_account(
            conn, "t-1", "user:alice", "sandbox", "acct-1", provider_app="second"
        )
        site = await connection_rows.find_by_account(
            conn, "t-1", "user:alice", "sandbox", "acct-1", {"site": "acme"}
        )
        other_tenant = await connection_rows.find_by_account(conn, "t-2", "user:alice", "sandbox", "acct-1")
    assert [row.id if row else None for row in (found, named, site, other_tenant)] == [
        "c-default",
        "c-named",
        "c-site",
        None,
    ]


async def test_the_default_moves_within_one_owner_and_provider(database_url: str) -> None:
    await insert_connections(
        database_url,
        connection("c-old", is_default=True),
        connection("c-new"),
        connection("c-bob", owner="user:bob", is_default=True),
        connection("c-other-tenant", tenant_id="t-2", is_default=True),
    )
    async with unit_of_work(database_url) as conn:
        new = await connection_rows.get(conn, "t-1", "c-new")
        assert new is not None
        await connection_rows.set_default(conn, new)
        current = await connection_rows.current_default(conn, "t-1", "user:alice", "sandbox")
        assert current is not None and current.id == "c-new"
        await connection_rows.update_row(conn, "c-new", {"status": "revoked"})
        await connection_rows.promote_next_default(conn, current)
        defaults = await (
            await conn.execute("SELECT id FROM vault.connections WHERE is_default ORDER BY id")
        ).fetchall()
    assert [row[0] for row in defaults] == ["c-bob", "c-old", "c-other-tenant"]


async def test_a_page_filters_and_continues_after_the_cursor(database_url: str) -> None:
    await insert_connections(
        database_url,
        *(connection(f"c-{n}") for n in range(4)),
        connection("c-revoked", status="revoked"),
        connection("c-bob", owner="user:bob"),
        connection("c-t2", tenant_id="t-2"),
    )
    async with unit_of_work(database_url) as conn:
        first = await connection_rows.list_page(
            conn, "t-1", owner="user:alice", provider="sandbox", status="active", after_id=None, limit=3
        )
        rest = await connection_rows.list_page(
            conn, "t-1", owner="user:alice", provider=None, status=None, after_id=first[-1].id, limit=10
        )
        everything = await connection_rows.list_page(
            conn, "t-1", owner=None, provider=None, status=None, after_id=None, limit=10
        )
    assert [row.id for row in first] == ["c-0", "c-1", "c-2"]
    assert [row.id for row in rest] == ["c-3", "c-revoked"]
    assert [row.id for row in everything] == ["c-0", "c-1", "c-2", "c-3", "c-bob", "c-revoked"]


async def test_webhook_lookups_find_an_apps_live_connections_by_digest_or_legacy_account(
    database_url: str,
) -> None:
    await insert_connections(
        database_url,
        connection("c-digest", provider_app_id="pa-1", account="acct-1", account_digest=b"digest-1"),
        connection("c-legacy", provider_app_id="pa-1", account="acct-2"),
        connection("c-revoked", provider_app_id="pa-1", account_digest=b"digest-1", status="revoked"),
        connection("c-other-app", provider_app_id="pa-2", account_digest=b"digest-1"),
        connection("c-t2", tenant_id="t-2", provider_app_id="pa-1", account_digest=b"digest-1"),
    )
    async with unit_of_work(database_url) as conn:
        ids = await connection_rows.by_accounts(
            conn, "t-1", "sandbox", ["acct-1", "acct-2"], [b"digest-1", b"digest-2"], provider_app_id="pa-1"
        )
        nothing = await connection_rows.by_accounts(conn, "t-1", "sandbox", [], [], provider_app_id="pa-1")
        tenants = await connection_rows.tenants_using_app(conn, "pa-1")
        locked = await connection_rows.active_for_app(conn, "pa-1")
    assert sorted(ids) == ["c-digest", "c-legacy"] and nothing == []
    assert tenants == ["t-1", "t-2"]
    assert [row.id for row in locked] == ["c-digest", "c-legacy", "c-t2"]


def app(app_id: str, tenant_id: str, **values: Any) -> dict[str, Any]:
    return {
        "id": app_id,
        "tenant_id": tenant_id,
        "provider": "sandbox",
        "client_id": f"client-{app_id}",
        "client_secret": b"\x01sealed-secret",
        "scopes": [],
        "settings": {},
        "provider_definition": None,
        **values,
    }


async def test_a_flow_uses_the_tenants_own_default_app_before_the_platforms(database_url: str) -> None:
    async with unit_of_work(database_url) as conn:
        for row in (
            app("pa-platform", PLATFORM),
            app("pa-own", "t-1", enabled=False),
            app("pa-named", "t-1", name="second"),
            app("pa-t2", "t-2"),
        ):
            await app_rows.insert(conn, row)
    async with unit_of_work(database_url) as conn:
        own = await app_rows.get_for_flow(conn, "t-1", "sandbox")
        fallback = await app_rows.get_for_flow(conn, "t-3", "sandbox")
        named = await app_rows.get(conn, "t-1", "sandbox", name="second", for_update=True)
        absent = await app_rows.get(conn, "t-3", "sandbox")
        listed = await app_rows.list_for_tenant(conn, "t-1")
        enabled = await app_rows.enabled_for_provider(conn, "sandbox")
        await app_rows.update_row(conn, "pa-own", {"enabled": True, "settings": {"site": "acme"}})
        updated = await app_rows.get_by_id(conn, "pa-own")
    assert (own and own.id, fallback and fallback.id, named and named.id, absent) == (
        "pa-own",
        "pa-platform",
        "pa-named",
        None,
    )
    assert [row.id for row in listed] == ["pa-own", "pa-named"]
    assert sorted(row.id for row in enabled) == ["pa-named", "pa-platform", "pa-t2"]
    assert updated is not None and updated.enabled and updated.settings == {"site": "acme"}
    assert "sealed" not in repr(updated)


async def test_tenant_definitions_conflicts_and_switches(database_url: str) -> None:
    async with unit_of_work(database_url) as conn:
        assert await tenant_provider_rows.put(conn, "t-1", "own", {"v": 1}, only_if_absent=False)
    async with unit_of_work(database_url) as conn:
        # A stored one is kept with only_if_absent, replaced otherwise; neither is new.
        assert not await tenant_provider_rows.put(conn, "t-1", "own", {"v": 2}, only_if_absent=True)
        assert await tenant_provider_rows.definition(conn, "t-1", "own") == {"v": 1}
        assert not await tenant_provider_rows.put(conn, "t-1", "own", {"v": 3}, only_if_absent=False)
        assert await tenant_provider_rows.put(conn, "t-2", "own", {"v": 9}, only_if_absent=True)
        assert await tenant_provider_rows.definitions(conn, "t-1") == [{"v": 3}]
        await tenant_provider_rows.switch(conn, "t-1", "own", False)
        await tenant_provider_rows.switch(conn, "t-1", "sandbox", False)
        await tenant_provider_rows.switch(conn, "t-1", "sandbox", True)
        assert await tenant_provider_rows.disabled(conn, "t-1") == ["own"]
        assert await tenant_provider_rows.disabled(conn, "t-2") == []
        assert not await tenant_provider_rows.remove(conn, "t-3", "own")
        assert await tenant_provider_rows.remove(conn, "t-1", "own")
        assert await tenant_provider_rows.definition(conn, "t-1", "own") is None
        assert await tenant_provider_rows.definition(conn, "t-2", "own") == {"v": 9}


def binding(connection_id: str) -> RevocationBinding:
    return RevocationBinding(
        tenant_id="t-1",
        connection_id=connection_id,
        owner="user:alice",
        provider="sandbox",
        provider_app_id="pa-1",
        field="refresh_token",
        sealed_token=b"\x01sealed-refresh",
        token_type_hint="refresh_token",
    )


async def test_a_due_revocation_is_claimed_once_and_a_locked_one_is_skipped(database_url: str) -> None:
    now = datetime.now(UTC)
    async with unit_of_work(database_url) as conn:
        due = await pending_rows.add(conn, binding("c-due"), next_attempt_at=now - timedelta(seconds=1))
        locked = await pending_rows.add(conn, binding("c-locked"), next_attempt_at=now - timedelta(seconds=1))
        await pending_rows.add(conn, binding("c-later"), next_attempt_at=now + timedelta(hours=1))
    async with await psycopg.AsyncConnection.connect(database_url) as holder, holder.transaction():
        await holder.execute("SELECT 1 FROM vault.pending_revocations WHERE id = %s FOR UPDATE", (locked,))
        async with unit_of_work(database_url) as conn:
            claimed = await pending_rows.claim_due(conn, limit=10, base_seconds=30, max_seconds=3600)
    assert [(row.id, row.attempts) for row in claimed] == [(due, 2)]
    assert claimed[0].binding == binding("c-due") and "sealed" not in repr(claimed[0])
    async with unit_of_work(database_url) as conn:
        # The claimed one is pushed out by the backoff; the one that was locked is due still.
        again = await pending_rows.claim_due(conn, limit=10, base_seconds=30, max_seconds=3600)
        await pending_rows.remove(conn, locked)
        [(left,)] = await (await conn.execute("SELECT count(*) FROM vault.pending_revocations")).fetchall()
    assert [row.id for row in again] == [locked] and left == 2


async def test_finished_runs_are_kept_once_and_forgotten_by_age(database_url: str) -> None:
    async with unit_of_work(database_url) as conn:
        await add_finished(conn, [("t-1", "run-1"), ("t-2", "run-1")])
    async with unit_of_work(database_url) as conn:
        await add_finished(conn, [("t-1", "run-1"), ("t-1", "run-2")])  # a redelivery changes nothing
        await add_finished(conn, [])
    async with unit_of_work(database_url) as conn:
        assert await forget_finished_before(conn, datetime.now(UTC) - timedelta(hours=1)) == 0
        assert await forget_finished_before(conn, datetime.now(UTC) + timedelta(seconds=1)) == 3
