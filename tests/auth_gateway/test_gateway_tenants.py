"""Tenants and API keys: bootstrap is idempotent, keys are stored hashed, revocation takes effect."""

import pytest
from sqlalchemy import create_engine, select

from grantline.auth_gateway.adapters.tables import api_keys, tenants
from grantline.auth_gateway.bootstrap import ensure_tenant_with_key, run_in_transaction
from grantline.auth_gateway.service import tenants as tenant_service
from grantline.auth_gateway.service.problems import Problem
from grantline.runtime.db.engine import sqlalchemy_url

DEV_KEY = "glk_dev_key_for_tests_0123456789abcdef"


def rows(database_url, table):
    engine = create_engine(sqlalchemy_url(database_url))
    with engine.connect() as conn:
        result = conn.execute(select(table)).mappings().all()
    engine.dispose()
    return result


def test_ensure_tenant_with_key_is_idempotent_and_stores_only_a_hash(database_url):
    first = ensure_tenant_with_key(database_url, name="dev", api_key=DEV_KEY)
    again = ensure_tenant_with_key(database_url, name="dev", api_key=DEV_KEY)
    assert first == again
    (tenant,) = rows(database_url, tenants)
    assert tenant["name"] == "dev" and "http://127.0.0.1:*" in tenant["return_to_allow_list"]
    (key,) = rows(database_url, api_keys)
    assert DEV_KEY not in str(dict(key)) and key["key_hash"] != DEV_KEY


def test_created_key_authenticates_until_revoked(database_url):
    async def create(conn):
        await tenant_service.create_tenant(conn, "acme", ["https://app.acme.test"])
        return await tenant_service.create_api_key(conn, "acme")

    key_id, key = run_in_transaction(database_url, create)
    assert key.startswith("glk_")

    async def auth(conn):
        return await tenant_service.authenticate(conn, key)

    principal = run_in_transaction(database_url, auth)
    assert principal.kind == "api_key" and principal.credential_id == key_id

    async def revoke(conn):
        await tenant_service.revoke_api_key(conn, key_id)

    run_in_transaction(database_url, revoke)
    with pytest.raises(Problem) as refused:
        run_in_transaction(database_url, auth)
    assert refused.value.status == 401 and key not in str(refused.value)


def test_duplicate_tenant_and_bad_allow_list_are_refused(database_url):
    async def twice(conn):
        await tenant_service.create_tenant(conn, "acme", [])
        await tenant_service.create_tenant(conn, "acme", [])

    with pytest.raises(tenant_service.TenantError):
        run_in_transaction(database_url, twice)

    async def bad(conn):
        await tenant_service.create_tenant(conn, "other", ["javascript:alert(1)"])

    with pytest.raises(tenant_service.TenantError):
        run_in_transaction(database_url, bad)


def test_the_tenant_commands_create_allow_mint_and_revoke(database_url):
    from typer.testing import CliRunner

    from grantline.cli.tenant_commands import app

    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(app, [*args, "--database-url", database_url])

    created = run("tenants", "create", "acme", "--allow-return-to", "https://app.acme.test")
    assert created.exit_code == 0, created.output
    assert run("tenants", "create", "acme").exit_code == 1  # the name is taken
    assert run("tenants", "allow-return-to", "acme", "https://new.acme.test").exit_code == 0
    (tenant,) = rows(database_url, tenants)
    assert tenant["return_to_allow_list"] == ["https://new.acme.test"]
    minted = run("api-keys", "create", "acme")
    assert minted.exit_code == 0, minted.output
    (key,) = rows(database_url, api_keys)
    assert key["tenant_id"] == tenant["tenant_id"] and key["revoked_at"] is None
    assert run("api-keys", "revoke", key["key_id"]).exit_code == 0
    assert rows(database_url, api_keys)[0]["revoked_at"] is not None
    assert run("api-keys", "revoke", key["key_id"]).exit_code == 1  # no longer active
