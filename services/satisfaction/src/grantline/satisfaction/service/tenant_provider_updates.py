"""Use case: apply the vault's announcement of a tenant's own provider (defined or removed) or of a
provider the tenant switched on or off.

The tenant's copy changes in the caller's transaction; after a definition or a switch-on, held runs
of the tenant are checked again: a run may have been held for a provider its user had already
connected (a provider removed then defined again, or switched off then on).
"""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.ext.asyncio import AsyncSession

from grantline.contract.connections import (
    ProviderEnablementChanged,
    TenantProviderDefined,
    TenantProviderRemoved,
)
from grantline.contract.runs import RunAdmitted
from grantline.satisfaction.adapters import tenant_provider_rows
from grantline.satisfaction.adapters.locks import lock_tenant
from grantline.satisfaction.service.catalogue_cache import CatalogueCache
from grantline.satisfaction.service.run_admission import resume_held_runs
from grantline.satisfaction.service.run_grants import RunGrantIssuer


async def apply_tenant_provider_event(
    session: AsyncSession,
    outbox: Table,
    catalogues: CatalogueCache,
    grants: RunGrantIssuer,
    event: TenantProviderDefined | TenantProviderRemoved | ProviderEnablementChanged,
    *,
    locked: bool = False,
) -> list[RunAdmitted]:
    """Store the change (unless a newer one is), refresh the tenant's view, resume what it satisfies."""
    if not locked:
        await lock_tenant(session, event.tenant_id)
    if isinstance(event, TenantProviderDefined):
        changed = await tenant_provider_rows.save_defined(session, event)
    elif isinstance(event, ProviderEnablementChanged):
        changed = await tenant_provider_rows.save_switch(session, event) and event.enabled
    else:
        await tenant_provider_rows.save_removed(session, event)
        changed = False  # a removal satisfies nothing new
    catalogue = await catalogues.fresh_for_tenant(session, event.tenant_id)
    if not changed:
        return []
    return await resume_held_runs(session, outbox, catalogue, grants, event.tenant_id, None)
