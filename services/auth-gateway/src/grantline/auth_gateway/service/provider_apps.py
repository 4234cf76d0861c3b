"""A tenant's own OAuth clients (provider apps), kept by the vault; their secrets are write-only."""

from __future__ import annotations

from grantline.auth_gateway.service.context import Gateway
from grantline.auth_gateway.service.principal import Principal
from grantline.auth_gateway.service.problems import invalid
from grantline.auth_gateway.service.views import (
    ProviderAppIn,
    ProviderAppListView,
    ProviderAppView,
    provider_app_view,
)
from grantline.contract import vault_admin
from grantline.providers.authorize import SettingsError, resolve_settings


async def list_provider_apps(
    gw: Gateway, caller: Principal, *, or_platform: bool = False
) -> ProviderAppListView:
    """Every provider app of the caller's tenant (never a secret); with ``or_platform`` also the
    operator's platform apps of providers the tenant has none for (what the tenant can connect)."""
    apps = await gw.bus.ask(
        vault_admin.SUBJECT_PROVIDER_APP_LIST,
        vault_admin.ProviderAppRef(tenant_id=caller.tenant_id, provider="*", or_platform=or_platform),
        vault_admin.ProviderAppList,
    )
    return ProviderAppListView(provider_apps=[provider_app_view(app) for app in apps.provider_apps])


async def get_provider_app(
    gw: Gateway, caller: Principal, provider: str, *, or_platform: bool = False, name: str | None = None
) -> ProviderAppView:
    """One provider app (with ``or_platform``, the platform's when the tenant has none; with ``name``,
    the tenant's app of that name), or a 404 problem."""
    info = await gw.bus.ask(
        vault_admin.SUBJECT_PROVIDER_APP_GET,
        vault_admin.ProviderAppRef(
            tenant_id=caller.tenant_id, provider=provider, or_platform=or_platform, name=name
        ),
        vault_admin.ProviderAppInfo,
    )
    return provider_app_view(info)


async def put_provider_app(
    gw: Gateway, caller: Principal, provider: str, app: ProviderAppIn, *, name: str | None = None
) -> ProviderAppView:
    """Store the tenant's OAuth client for a provider (its default one, or one more under ``name``);
    settings are checked against its definition."""
    if name is not None and (app.allow_workspace_fallback or app.force_workspace_connection):
        raise invalid("a named provider app shares no workspace connection: set that on the default app")
    definition = await gw.catalogue.provider(caller.tenant_id, provider)
    if definition.discovered_at_connect:
        raise invalid(f"{definition.name} is discovered and registered when it is connected; it takes no app")
    if definition.oauth is None:
        raise invalid(f"provider {provider!r} uses API keys; it has no OAuth client")
    try:
        resolved = resolve_settings(definition, app.settings)
    except SettingsError as error:
        raise invalid(str(error)) from None
    split = [part for scope in app.scopes for part in scope.split()]
    info = await gw.bus.ask(
        vault_admin.SUBJECT_PROVIDER_APP_PUT,
        vault_admin.PutProviderAppRequest(
            tenant_id=caller.tenant_id,
            provider=provider,
            name=name,
            client_id=app.client_id,
            client_secret=app.client_secret,
            webhook_secret=app.webhook_secret,
            scopes=list(dict.fromkeys(split)),
            settings=resolved,
            allow_workspace_fallback=app.allow_workspace_fallback,
            force_workspace_connection=app.force_workspace_connection,
            enabled=app.enabled,
            actor=caller.actor,
        ),
        vault_admin.ProviderAppInfo,
        with_secrets=True,
    )
    return provider_app_view(info)


async def delete_provider_app(
    gw: Gateway, caller: Principal, provider: str, *, name: str | None = None
) -> vault_admin.ProviderAppDeleted:
    """Disable the provider app (the default one, or the one named ``name``); the vault revokes every
    connection made with it."""
    return await gw.bus.ask(
        vault_admin.SUBJECT_PROVIDER_APP_DELETE,
        vault_admin.ProviderAppDeleteRequest(
            tenant_id=caller.tenant_id, provider=provider, name=name, actor=caller.actor
        ),
        vault_admin.ProviderAppDeleted,
    )
