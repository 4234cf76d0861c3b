"""Hand the tenant providers the gateway kept before the vault owned them over to the vault.

A row is deleted here only after the vault holds a definition for it (`only_if_absent`: one the
tenant has defined since, through the vault, is never overwritten), so a fault loses nothing; a
row the vault refuses stays and is reported.
"""

from __future__ import annotations

import logging

from grantline.auth_gateway.adapters import tenant_store
from grantline.auth_gateway.adapters.bus import Bus
from grantline.auth_gateway.service.problems import Problem
from grantline.contract import vault_admin
from grantline.runtime.service_runtime import ServiceRuntime

log = logging.getLogger(__name__)

BATCH = 100


async def hand_over_tenant_providers(runtime: ServiceRuntime, bus: Bus) -> int:
    """One pass over the rows left here; returns how many the vault took."""
    async with runtime.single_statement(wake_relay=False) as conn:
        rows = await tenant_store.legacy_tenant_providers(conn, limit=BATCH)
    taken = 0
    for tenant_id, provider, definition in rows:
        try:
            await bus.ask(
                vault_admin.SUBJECT_TENANT_PROVIDER_PUT,
                vault_admin.PutTenantProviderRequest(
                    tenant_id=tenant_id, definition=definition, actor="migration", only_if_absent=True
                ),
                vault_admin.TenantProviderInfo,
            )
        except Problem as problem:
            if problem.status == 503:
                return taken  # the vault is away: the next pass tries again
            log.warning("the vault refused a stored tenant provider", extra={"code": problem.code})
            continue
        async with runtime.single_statement(wake_relay=False) as conn:
            await tenant_store.forget_legacy_tenant_provider(conn, tenant_id, provider)
        taken += 1
    return taken
