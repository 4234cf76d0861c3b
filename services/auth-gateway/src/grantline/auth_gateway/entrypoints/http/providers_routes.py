"""`/v1/providers`: the catalogue as the tenant sees it, and the tenant's own provider definitions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Response

from grantline.auth_gateway.entrypoints.http.context import AdminDep, CallerDep, GatewayDep
from grantline.auth_gateway.entrypoints.http.problem_details import PROBLEM_RESPONSES
from grantline.auth_gateway.service import tenant_providers
from grantline.auth_gateway.service.views import CatalogueView, ProviderView

router = APIRouter(prefix="/v1/providers", tags=["providers"], responses=PROBLEM_RESPONSES)


@router.get("", response_model=CatalogueView, summary="The provider catalogue, by category")
async def list_providers(gw: GatewayDep, caller: CallerDep) -> CatalogueView:
    """Categories, providers, their apps, scopes with descriptions and enabled flags."""
    return await tenant_providers.catalogue_view(gw, caller)


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
