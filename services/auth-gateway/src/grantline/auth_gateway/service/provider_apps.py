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
from grantline.common.contract import vault_admin
from grantline.providers.authorize import SettingsError, resolve_settings


async def list_provider_apps(gw: Gateway, caller: Principal) -> ProviderAppListView:
    """Every provider app of the caller's tenant (never a secret)."""
    apps = await gw.bus.ask(
        vault_admin.SUBJECT_PROVIDER_APP_LIST,
        vault_admin.ProviderAppRef(tenant_id=caller.tenant_id, provider="*"),
        vault_admin.ProviderAppList,
    )
    return ProviderAppListView(provider_apps=[provider_app_view(app) for app in apps.provider_apps])


async def get_provider_app(gw: Gateway, caller: Principal, provider: str) -> ProviderAppView:
    """One provider app, or a 404 problem."""
    info = await gw.bus.ask(
        vault_admin.SUBJECT_PROVIDER_APP_GET,
        vault_admin.ProviderAppRef(tenant_id=caller.tenant_id, provider=provider),
        vault_admin.ProviderAppInfo,
    )
    return provider_app_view(info)


async def put_provider_app(
    gw: Gateway, caller: Principal, provider: str, app: ProviderAppIn
) -> ProviderAppView:
    """Store the tenant's OAuth client for a provider; settings are checked against its definition."""
    definition = await gw.catalogue.provider(caller.tenant_id, provider)
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
            client_id=app.client_id,
            client_secret=app.client_secret,
            webhook_secret=app.webhook_secret,
            scopes=list(dict.fromkeys(split)),
            settings=resolved,
            allow_workspace_fallback=app.allow_workspace_fallback,
            enabled=app.enabled,
            actor=caller.actor,
        ),
        vault_admin.ProviderAppInfo,
        with_secrets=True,
    )
    return provider_app_view(info)


async def delete_provider_app(
    gw: Gateway, caller: Principal, provider: str
) -> vault_admin.ProviderAppDeleted:
    """Disable the provider app; the vault revokes every connection made with it."""
    return await gw.bus.ask(
        vault_admin.SUBJECT_PROVIDER_APP_DELETE,
        vault_admin.ProviderAppDeleteRequest(
            tenant_id=caller.tenant_id, provider=provider, actor=caller.actor
        ),
        vault_admin.ProviderAppDeleted,
    )
