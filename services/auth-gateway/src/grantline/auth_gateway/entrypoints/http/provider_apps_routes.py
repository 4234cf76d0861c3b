"""`/v1/provider-apps/{provider}`: a tenant's own OAuth client, kept by the vault (secret write-only).

`/v1/provider-apps/{provider}/apps/{name}`: one more named client for the provider, which a connection
names at initiation (`provider_app`), e.g. a second shop's custom app.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel

from grantline.auth_gateway.entrypoints.http.context import AdminDep, GatewayDep
from grantline.auth_gateway.entrypoints.http.problem_details import PROBLEM_RESPONSES
from grantline.auth_gateway.service import provider_apps
from grantline.auth_gateway.service.views import ProviderAppIn, ProviderAppListView, ProviderAppView
from grantline.contract.envelope import PROVIDER_APP_NAME_PATTERN

router = APIRouter(prefix="/v1/provider-apps", tags=["provider apps"], responses=PROBLEM_RESPONSES)

ProviderId = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,63}$", description="provider id")]
AppName = Annotated[str, Path(pattern=PROVIDER_APP_NAME_PATTERN, description="the named app's name")]


class ProviderAppDeletedView(BaseModel):
    provider: str
    name: str | None = None
    revoked_connections: int


@router.get("", response_model=ProviderAppListView, summary="The tenant's provider apps")
async def list_provider_apps(gw: GatewayDep, caller: AdminDep) -> ProviderAppListView:
    """Every provider app of the tenant (never a secret)."""
    return await provider_apps.list_provider_apps(gw, caller)


@router.put("/{provider}", response_model=ProviderAppView, summary="Create or update a provider app")
async def put_provider_app(
    gw: GatewayDep, caller: AdminDep, provider: ProviderId, body: ProviderAppIn
) -> ProviderAppView:
    """Store the tenant's OAuth client for a provider; settings are checked against the catalogue.

    `enabled: false` on an enabled app revokes every connection made with it, as `DELETE` does.
    """
    return await provider_apps.put_provider_app(gw, caller, provider, body)


@router.get("/{provider}", response_model=ProviderAppView, summary="Read a provider app")
async def get_provider_app(gw: GatewayDep, caller: AdminDep, provider: ProviderId) -> ProviderAppView:
    """The provider app (whether secrets are set, never their values)."""
    return await provider_apps.get_provider_app(gw, caller, provider)


@router.delete("/{provider}", response_model=ProviderAppDeletedView, summary="Disable a provider app")
async def delete_provider_app(
    gw: GatewayDep, caller: AdminDep, provider: ProviderId
) -> ProviderAppDeletedView:
    """Disable the provider app; every connection made with it is revoked."""
    deleted = await provider_apps.delete_provider_app(gw, caller, provider)
    return ProviderAppDeletedView(provider=deleted.provider, revoked_connections=deleted.revoked_connections)


@router.put(
    "/{provider}/apps/{name}", response_model=ProviderAppView, summary="Create or update a named provider app"
)
async def put_named_provider_app(
    gw: GatewayDep, caller: AdminDep, provider: ProviderId, name: AppName, body: ProviderAppIn
) -> ProviderAppView:
    """Store one more OAuth client of the tenant for a provider under a name (a second shop's or
    site's own app). A connection uses it when initiated with `provider_app: name`; it shares no
    workspace connection (`allow_workspace_fallback` and `force_workspace_connection` stay false).
    `enabled: false` revokes every connection made with it, as `DELETE` does."""
    return await provider_apps.put_provider_app(gw, caller, provider, body, name=name)


@router.get("/{provider}/apps/{name}", response_model=ProviderAppView, summary="Read a named provider app")
async def get_named_provider_app(
    gw: GatewayDep, caller: AdminDep, provider: ProviderId, name: AppName
) -> ProviderAppView:
    """The named provider app (whether secrets are set, never their values)."""
    return await provider_apps.get_provider_app(gw, caller, provider, name=name)


@router.delete(
    "/{provider}/apps/{name}", response_model=ProviderAppDeletedView, summary="Disable a named provider app"
)
async def delete_named_provider_app(
    gw: GatewayDep, caller: AdminDep, provider: ProviderId, name: AppName
) -> ProviderAppDeletedView:
    """Disable the named provider app; every connection made with it is revoked (at the provider too)."""
    deleted = await provider_apps.delete_provider_app(gw, caller, provider, name=name)
    return ProviderAppDeletedView(
        provider=deleted.provider, name=deleted.name, revoked_connections=deleted.revoked_connections
    )
