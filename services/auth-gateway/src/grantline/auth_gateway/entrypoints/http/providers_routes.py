"""`/v1/providers`: the catalogue as the tenant sees it, and the tenant's own provider definitions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Response
from pydantic import BaseModel

from grantline.auth_gateway.entrypoints.http.context import AdminDep, CallerDep, GatewayDep
from grantline.auth_gateway.entrypoints.http.problem_details import PROBLEM_RESPONSES
from grantline.auth_gateway.service.problems import Problem
from grantline.common.contract import vault_admin
from grantline.providers.definition import ProviderDefinition

router = APIRouter(prefix="/v1/providers", tags=["providers"], responses=PROBLEM_RESPONSES)


class ScopeView(BaseModel):
    id: str
    description: str
    default: bool


class AppView(BaseModel):
    id: str
    name: str
    category: str


class SettingView(BaseModel):
    label: str
    pattern: str
    description: str = ""
    example: str | None = None
    required: bool = True


class ApiKeyFieldView(BaseModel):
    id: str
    label: str
    secret: bool
    description: str = ""


class ProviderView(BaseModel):
    id: str
    name: str
    category: str
    auth: str
    description: str
    docs_url: str | None = None
    enabled: bool
    pkce: str | None = None
    scopes: list[ScopeView]
    apps: list[AppView]
    settings: dict[str, SettingView]
    api_key_fields: list[ApiKeyFieldView] = []
    webhook_scheme: str | None = None
    tenant_defined: bool
    # Whether the tenant has a provider app for it; None when the vault could not be asked.
    configured: bool | None = None


class CategoryView(BaseModel):
    id: str
    name: str
    description: str
    providers: list[str]


class CatalogueView(BaseModel):
    categories: list[CategoryView]
    providers: list[ProviderView]


def provider_view(definition: ProviderDefinition, *, own: bool, configured: bool | None) -> ProviderView:
    """The public description of one provider."""
    scopes: list[ScopeView] = []
    if definition.oauth is not None:
        spec = definition.oauth.scopes
        scopes = [
            ScopeView(id=k, description=v, default=k in spec.default) for k, v in spec.available.items()
        ]
    return ProviderView(
        id=definition.id,
        name=definition.name,
        category=definition.category,
        auth=definition.auth,
        description=definition.description,
        docs_url=definition.docs_url,
        enabled=definition.enabled,
        pkce=definition.oauth.pkce if definition.oauth else None,
        scopes=scopes,
        apps=[AppView(id=a.id, name=a.name, category=a.category) for a in definition.apps],
        settings={
            name: SettingView(
                label=s.label,
                pattern=s.pattern,
                description=s.description,
                example=s.example,
                required=s.required,
            )
            for name, s in definition.settings.items()
        },
        api_key_fields=[
            ApiKeyFieldView(id=f.id, label=f.label, secret=f.secret, description=f.description)
            for f in (definition.api_key.fields if definition.api_key else ())
        ],
        webhook_scheme=definition.webhook_scheme,
        tenant_defined=own,
        configured=configured,
    )


@router.get("", response_model=CatalogueView, summary="The provider catalogue, by category")
async def list_providers(gw: GatewayDep, caller: CallerDep) -> CatalogueView:
    """Categories, providers, their apps, scopes with descriptions and enabled flags."""
    async with gw.runtime.sessions() as session:
        catalogue = await gw.catalogue.for_tenant(session, caller.tenant_id)
        own = await gw.catalogue.own_ids(session, caller.tenant_id)
    configured: set[str] | None
    try:
        apps = await gw.bus.ask(
            vault_admin.SUBJECT_PROVIDER_APP_LIST,
            vault_admin.ProviderAppRef(tenant_id=caller.tenant_id, provider="*"),
            vault_admin.ProviderAppList,
        )
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
    async with gw.runtime.transaction() as session:
        _, created = await gw.catalogue.define(session, caller.tenant_id, definition)
        stored = await gw.catalogue.provider(session, caller.tenant_id, str(definition.get("id")))
    if not created:
        response.status_code = 200
    return provider_view(stored, own=True, configured=None)
