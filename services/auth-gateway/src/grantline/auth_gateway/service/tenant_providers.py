"""The catalogue as a tenant sees it, and the providers a tenant defines itself."""

from __future__ import annotations

from typing import Any

from grantline.auth_gateway.service.catalogue import TenantProviders
from grantline.auth_gateway.service.context import Gateway
from grantline.auth_gateway.service.principal import Principal
from grantline.auth_gateway.service.problems import Problem, not_found
from grantline.auth_gateway.service.provider_apps import list_provider_apps
from grantline.auth_gateway.service.views import CatalogueView, CategoryView, ProviderView, provider_view
from grantline.providers.catalogue import Catalogue


async def catalogue_view(gw: Gateway, caller: Principal, *, include_disabled: bool = False) -> CatalogueView:
    """Categories, providers, their apps, scopes and whether the tenant has a provider app for each.

    Providers the tenant switched off are left out unless ``include_disabled`` (then ``enabled`` is
    False), so they vanish from the connect pages and from what runners list.
    """
    try:
        tenant = await gw.catalogue.tenant_providers(caller.tenant_id)
    except Problem:
        # The vault did not answer: the shipped catalogue is still useful.
        tenant = TenantProviders(own=[], disabled=frozenset())
    catalogue = gw.catalogue.layered(tenant)
    if not include_disabled and tenant.disabled:
        catalogue = Catalogue(
            [d for d in catalogue.providers() if d.id not in tenant.disabled], catalogue.categories()
        )
    own = {definition.id for definition in tenant.own}
    configured: set[str] | None
    try:
        apps = await list_provider_apps(gw, caller, or_platform=True)
        # A named app serves only the connections that name it: the provider's own flows need the default,
        # unless the caller (a connect session) is pinned to a named app of the provider.
        configured = {
            app.provider
            for app in apps.provider_apps
            if app.enabled and app.name == caller.app_for(app.provider)
        }
    except Problem:
        configured = None  # the catalogue is still useful without the vault
    # A scoped connect session (a held run's link) sees only the providers it may connect.
    providers = [
        provider_view(d, own=d.id in own, configured=None if configured is None else d.id in configured)
        for d in catalogue.providers()
        if caller.may_connect(d.id)
    ]
    grouped = {
        category: [d for d in definitions if caller.may_connect(d.id)]
        for category, definitions in catalogue.by_category().items()
    }
    categories = [
        CategoryView(id=c.id, name=c.name, description=c.description, providers=[d.id for d in grouped[c.id]])
        for c in catalogue.categories()
        if grouped.get(c.id)
    ]
    return CatalogueView(categories=categories, providers=providers)


async def define_provider(
    gw: Gateway, caller: Principal, definition: dict[str, Any]
) -> tuple[ProviderView, bool]:
    """Have the vault store a tenant-defined provider; returns its view and whether it is new."""
    stored, created = await gw.catalogue.define(caller.tenant_id, definition)
    return provider_view(stored, own=True, configured=None), created


async def set_provider_enabled(gw: Gateway, caller: Principal, provider: str, enabled: bool) -> ProviderView:
    """Switch a provider (catalogue or the tenant's own) on or off for the caller's tenant."""
    tenant = await gw.catalogue.tenant_providers(caller.tenant_id)
    definition = gw.catalogue.layered(TenantProviders(own=tenant.own, disabled=frozenset())).find(provider)
    if definition is None:
        raise not_found(f"provider {provider!r}")
    await gw.catalogue.set_enabled(caller.tenant_id, provider, enabled, caller.actor)
    switched = definition.model_copy(update={"enabled": enabled and definition.enabled})
    return provider_view(switched, own=provider in {d.id for d in tenant.own}, configured=None)
