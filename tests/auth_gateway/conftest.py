"""Gateway integration fixtures: sandbox, real vault, gateway (+ satisfaction, audit), two tenants."""

import pytest
from gateway_support import (
    CATALOGUE_LOADERS,
    KEY_A,
    KEY_B,
    cached_load_catalogue,
    provider_servers,
    running_stack,
)

from grantline.auth_gateway.bootstrap import ensure_tenant_with_key


def _tenants(database_url):
    return (
        ensure_tenant_with_key(database_url, name="tenant-a", api_key=KEY_A),
        ensure_tenant_with_key(database_url, name="tenant-b", api_key=KEY_B),
    )


@pytest.fixture(scope="session")
def _provider_servers():
    with provider_servers() as servers:
        yield servers


@pytest.fixture
def servers(_provider_servers, monkeypatch):
    """The sandbox and JWKS servers, reset; catalogues parsed once per session."""
    _provider_servers.reset()
    for target in CATALOGUE_LOADERS:
        monkeypatch.setattr(target, cached_load_catalogue)
    return _provider_servers


@pytest.fixture
async def stack(nats_url, database_url, tmp_path, servers):
    """Sandbox, vault and gateway."""
    tenant_a, tenant_b = _tenants(database_url)
    async with running_stack(nats_url, database_url, tmp_path, servers) as running:
        running.tenant_a, running.tenant_b = tenant_a, tenant_b
        yield running


@pytest.fixture
async def full_stack(nats_url, database_url, tmp_path, servers):
    """Sandbox, vault, satisfaction, audit, runner-auth, notifier and gateway."""
    tenant_a, tenant_b = _tenants(database_url)
    async with running_stack(
        nats_url, database_url, tmp_path, servers, satisfaction_and_audit=True
    ) as running:
        running.tenant_a, running.tenant_b = tenant_a, tenant_b
        yield running
