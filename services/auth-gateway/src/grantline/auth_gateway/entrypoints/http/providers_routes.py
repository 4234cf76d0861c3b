"""`/v1/providers`: the catalogue as the tenant sees it, and the tenant's own provider definitions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Path, Query, Response
from pydantic import BaseModel

from grantline.auth_gateway.entrypoints.http.context import AdminDep, CallerDep, GatewayDep
from grantline.auth_gateway.entrypoints.http.problem_details import PROBLEM_RESPONSES
from grantline.auth_gateway.service import tenant_providers
from grantline.auth_gateway.service.views import CatalogueView, ProviderView

router = APIRouter(prefix="/v1/providers", tags=["providers"], responses=PROBLEM_RESPONSES)


@router.get("", response_model=CatalogueView, summary="The provider catalogue, by category")
async def list_providers(
    gw: GatewayDep,
    caller: CallerDep,
    include_disabled: Annotated[
        bool, Query(description="also list the providers the tenant switched off (with enabled: false)")
    ] = False,
) -> CatalogueView:
    """Categories, providers, their apps, scopes with descriptions and enabled flags.

    Providers the tenant switched off (`PUT /v1/providers/{provider}/enabled`) are left out.
    """
    return await tenant_providers.catalogue_view(gw, caller, include_disabled=include_disabled)


@router.post(
    "",
    response_model=ProviderView,
    status_code=201,
    summary="Define the tenant's own provider",
    responses={200: {"model": ProviderView, "description": "An existing definition was replaced"}},
)
async def define_provider(
    gw: GatewayDep,
    caller: AdminDep,
    response: Response,
    definition: dict[str, Any] = Body(
        ..., description="A provider definition: the same fields and quirk flags as catalogue entries"
    ),
) -> ProviderView:
    """Store a tenant-defined provider (any standard OAuth 2.0 server); same schema as the catalogue."""
    view, created = await tenant_providers.define_provider(gw, caller, definition)
    if not created:
        response.status_code = 200
    return view


class ProviderEnabledIn(BaseModel):
    enabled: bool


ProviderId = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,63}$", description="provider id")]


@router.put(
    "/{provider}/enabled", response_model=ProviderView, summary="Switch a provider on or off for the tenant"
)
async def set_provider_enabled(
    gw: GatewayDep, caller: AdminDep, provider: ProviderId, body: ProviderEnabledIn
) -> ProviderView:
    """A switched-off provider (catalogue or the tenant's own) vanishes from `GET /v1/providers` and the
    connect pages, cannot be connected (`provider_disabled`), and satisfies none of the tenant's
    requirements (they name it as disabled). Existing connections stay; disabling the provider app is
    what revokes them."""
    return await tenant_providers.set_provider_enabled(gw, caller, provider, body.enabled)
