"""The catalogue as a tenant sees it, and the providers a tenant defines itself."""

from __future__ import annotations

from typing import Any

from grantline.auth_gateway.service.context import Gateway
from grantline.auth_gateway.service.principal import Principal
from grantline.auth_gateway.service.problems import Problem
from grantline.auth_gateway.service.provider_apps import list_provider_apps
from grantline.auth_gateway.service.views import CatalogueView, CategoryView, ProviderView, provider_view


async def catalogue_view(gw: Gateway, caller: Principal) -> CatalogueView:
    """Categories, providers, their apps, scopes and whether the tenant has a provider app for each."""
    try:
        own_definitions = await gw.catalogue.own_definitions(caller.tenant_id)
    except Problem:
        own_definitions = []  # the vault did not answer: the shipped catalogue is still useful
    catalogue = gw.catalogue.base.with_tenant_definitions(own_definitions)
    own = {definition.id for definition in own_definitions}
    configured: set[str] | None
    try:
        apps = await list_provider_apps(gw, caller)
        configured = {app.provider for app in apps.provider_apps if app.enabled}
    except Problem:
        configured = None  # the catalogue is still useful without the vault
    providers = [
        provider_view(d, own=d.id in own, configured=None if configured is None else d.id in configured)
        for d in catalogue.providers()
    ]
    grouped = catalogue.by_category()
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
