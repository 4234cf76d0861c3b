"""The catalogue as the report reads it, per tenant, held in memory and re-read periodically.

Every tenant sees the shared catalogue (seeded from the provider catalogue, with operators' flags);
a tenant with providers of its own sees them after it, and the providers it switched off disabled
(``tenant_view``). A tenant with neither shares the shared view object itself, so the report memo
serves it and every other such tenant together.

The replica that applies a ``connections.provider_*`` event updates its copy at once; the others
pick the change up on their next refresh (``catalogue_refresh_seconds``). Resuming held runs after a
grant reads the tenant's providers afresh in its transaction (``fresh_for_tenant``), so a held run is
never left held because this replica's copy was behind.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from grantline.providers.catalogue import Catalogue
from grantline.runtime.db.driver import DriverConnection
from grantline.satisfaction.adapters.catalogue_rows import load_catalogue_view, seed_catalogue
from grantline.satisfaction.adapters.tenant_provider_rows import every_tenants_state, state_of
from grantline.satisfaction.domain.catalogue import (
    CatalogueView,
    StaticCatalogue,
    TenantCatalogueState,
    tenant_view,
)

log = logging.getLogger(__name__)

# A unit of work on psycopg: ``runtime.driver_transaction`` (without waking the relay: nothing here
# writes events).
Transactions = Callable[[], AbstractAsyncContextManager[DriverConnection]]


class CatalogueCache:
    """Reports read ``for_tenant(tenant)``; ``refresh`` swaps in fresh copies (reference assignments)."""

    def __init__(self) -> None:
        self.view = StaticCatalogue.of({}, [])
        self._states: dict[str, TenantCatalogueState] = {}
        self._views: dict[str, StaticCatalogue] = {}

    def for_tenant(self, tenant_id: str) -> CatalogueView:
        """The catalogue one tenant's requirements are read against."""
        return self._views.get(tenant_id, self.view)

    async def seed_and_load(self, transactions: Transactions, catalogue: Catalogue) -> None:
        """Upsert the shipped catalogue into the tables (keeping operators' flags), then load it."""
        async with transactions() as conn:
            await seed_catalogue(conn, catalogue)
        await self.refresh(transactions)

    async def refresh(self, transactions: Transactions) -> None:
        """Re-read the tables (in one transaction, as they were read together before)."""
        async with transactions() as conn:
            fresh = await load_catalogue_view(conn)
            states = await every_tenants_state(conn)
        # Keep the same objects while nothing changed: memoized reports are keyed on them.
        base_changed = fresh != self.view
        if base_changed:
            self.view = fresh
        views = {
            tenant: self._views[tenant]
            if not base_changed and self._states.get(tenant) == state and tenant in self._views
            else tenant_view(self.view, state.own, state.disabled)
            for tenant, state in states.items()
        }
        self._states, self._views = states, views

    async def fresh_for_tenant(self, conn: DriverConnection, tenant_id: str) -> CatalogueView:
        """The tenant's view with its own providers and switches read in ``conn`` (and remembered)."""
        self.remember(tenant_id, await state_of(conn, tenant_id))
        return self.for_tenant(tenant_id)

    def remember(self, tenant_id: str, state: TenantCatalogueState) -> None:
        """Take a tenant's state as read (or as just changed) into the copy."""
        if self._states.get(tenant_id, TenantCatalogueState()) == state:
            return
        states, views = dict(self._states), dict(self._views)
        if state:
            states[tenant_id], views[tenant_id] = state, tenant_view(self.view, state.own, state.disabled)
        else:
            states.pop(tenant_id, None)
            views.pop(tenant_id, None)
        self._states, self._views = states, views

    async def refresh_forever(self, transactions: Transactions, every_seconds: float) -> None:
        """Re-read the tables every ``every_seconds`` (a background task)."""
        while True:
            await asyncio.sleep(every_seconds)
            try:
                await self.refresh(transactions)
            except Exception:
                log.warning("catalogue refresh failed; keeping the previous copy", exc_info=True)
