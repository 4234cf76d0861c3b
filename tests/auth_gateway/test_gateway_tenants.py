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
    async def create(session):
        await tenant_service.create_tenant(session, "acme", ["https://app.acme.test"])
        return await tenant_service.create_api_key(session, "acme")

    key_id, key = run_in_transaction(database_url, create)
    assert key.startswith("glk_")

    async def auth(session):
        return await tenant_service.authenticate(session, key)

    principal = run_in_transaction(database_url, auth)
    assert principal.kind == "api_key" and principal.credential_id == key_id

    async def revoke(session):
        await tenant_service.revoke_api_key(session, key_id)

    run_in_transaction(database_url, revoke)
    with pytest.raises(Problem) as refused:
        run_in_transaction(database_url, auth)
    assert refused.value.status == 401 and key not in str(refused.value)


def test_duplicate_tenant_and_bad_allow_list_are_refused(database_url):
    async def twice(session):
        await tenant_service.create_tenant(session, "acme", [])
        await tenant_service.create_tenant(session, "acme", [])

    with pytest.raises(tenant_service.TenantError):
        run_in_transaction(database_url, twice)

    async def bad(session):
        await tenant_service.create_tenant(session, "other", ["javascript:alert(1)"])

    with pytest.raises(tenant_service.TenantError):
        run_in_transaction(database_url, bad)
