"""Use case: apply the vault's announcement of a tenant's own provider (defined or removed) or of a
provider the tenant switched on or off.

The tenant's copy changes in the caller's transaction; after a definition or a switch-on, held runs
of the tenant are checked again: a run may have been held for a provider its user had already
connected (a provider removed then defined again, or switched off then on).
"""

from __future__ import annotations

from grantline.contract.connections import (
    ProviderEnablementChanged,
    TenantProviderDefined,
    TenantProviderRemoved,
)
from grantline.contract.runs import RunAdmitted
from grantline.runtime.db.driver import DriverConnection
from grantline.runtime.outbox_relay import OutboxLocation
from grantline.satisfaction.adapters import tenant_provider_rows
from grantline.satisfaction.adapters.locks import lock_tenant
from grantline.satisfaction.service.catalogue_cache import CatalogueCache
from grantline.satisfaction.service.run_admission import resume_held_runs
from grantline.satisfaction.service.run_grants import RunGrantIssuer


async def apply_tenant_provider_event(
    conn: DriverConnection,
    outbox: OutboxLocation,
    catalogues: CatalogueCache,
    grants: RunGrantIssuer,
    event: TenantProviderDefined | TenantProviderRemoved | ProviderEnablementChanged,
    *,
    locked: bool = False,
) -> list[RunAdmitted]:
    """Store the change (unless a newer one is), refresh the tenant's view, resume what it satisfies."""
    if not locked:
        await lock_tenant(conn, event.tenant_id)
    if isinstance(event, TenantProviderDefined):
        changed = await tenant_provider_rows.save_defined(conn, event)
    elif isinstance(event, ProviderEnablementChanged):
        changed = await tenant_provider_rows.save_switch(conn, event) and event.enabled
    else:
        await tenant_provider_rows.save_removed(conn, event)
        changed = False  # a removal satisfies nothing new
    catalogue = await catalogues.fresh_for_tenant(conn, event.tenant_id)
    if not changed:
        return []
    return await resume_held_runs(conn, outbox, catalogue, grants, event.tenant_id, None)
