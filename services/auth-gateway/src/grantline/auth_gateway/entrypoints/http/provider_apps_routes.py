"""`/v1/provider-apps/{provider}`: a tenant's own OAuth client, kept by the vault (secret write-only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel

from grantline.auth_gateway.entrypoints.http.context import AdminDep, GatewayDep
from grantline.auth_gateway.entrypoints.http.problem_details import PROBLEM_RESPONSES
from grantline.auth_gateway.service import provider_apps
from grantline.auth_gateway.service.views import ProviderAppIn, ProviderAppListView, ProviderAppView

router = APIRouter(prefix="/v1/provider-apps", tags=["provider apps"], responses=PROBLEM_RESPONSES)

ProviderId = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,63}$", description="provider id")]


class ProviderAppDeletedView(BaseModel):
    provider: str
    revoked_connections: int


@router.get("", response_model=ProviderAppListView, summary="The tenant's provider apps")
async def list_provider_apps(gw: GatewayDep, caller: AdminDep) -> ProviderAppListView:
    """Every provider app of the tenant (never a secret)."""
    return await provider_apps.list_provider_apps(gw, caller)


@router.put("/{provider}", response_model=ProviderAppView, summary="Create or update a provider app")
async def put_provider_app(
    gw: GatewayDep, caller: AdminDep, provider: ProviderId, body: ProviderAppIn
) -> ProviderAppView:
    """Store the tenant's OAuth client for a provider; settings are checked against the catalogue."""
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
