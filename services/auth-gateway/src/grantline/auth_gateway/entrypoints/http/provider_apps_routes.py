"""`/v1/provider-apps/{provider}`: a tenant's own OAuth client, kept by the vault (secret write-only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from grantline.auth_gateway.entrypoints.http.context import AdminDep, GatewayDep
from grantline.auth_gateway.entrypoints.http.problem_details import PROBLEM_RESPONSES
from grantline.auth_gateway.service.oauth_flow import MAX_SCOPES
from grantline.auth_gateway.service.problems import invalid
from grantline.common.contract import vault_admin
from grantline.providers.authorize import SettingsError, resolve_settings

router = APIRouter(prefix="/v1/provider-apps", tags=["provider apps"], responses=PROBLEM_RESPONSES)

ProviderId = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{0,63}$", description="provider id")]


class ProviderAppIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(min_length=1, max_length=512)
    client_secret: SecretStr | None = Field(
        default=None, max_length=4096, description="write-only; omit to keep the stored one"
    )
    webhook_secret: SecretStr | None = Field(default=None, max_length=4096, description="write-only")
    scopes: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default=[], max_length=MAX_SCOPES, description="default scopes for new connections"
    )
    settings: dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=1000)]] = Field(
        default={}, max_length=50
    )
    allow_workspace_fallback: bool = Field(
        default=False, description="a workspace connection may serve users without their own"
    )
    enabled: bool = True


class ProviderAppView(BaseModel):
    provider: str
    client_id: str
    has_client_secret: bool
    has_webhook_secret: bool
    scopes: list[str]
    settings: dict[str, str]
    allow_workspace_fallback: bool
    enabled: bool
    created_at: datetime | None = None
    updated_at: datetime | None = None


class ProviderAppListView(BaseModel):
    provider_apps: list[ProviderAppView]


class ProviderAppDeletedView(BaseModel):
    provider: str
    revoked_connections: int


def _view(info: vault_admin.ProviderAppInfo) -> ProviderAppView:
    return ProviderAppView(**info.model_dump(exclude={"tenant_id"}))


@router.get("", response_model=ProviderAppListView, summary="The tenant's provider apps")
async def list_provider_apps(gw: GatewayDep, caller: AdminDep) -> ProviderAppListView:
    """Every provider app of the tenant (never a secret)."""
    apps = await gw.bus.ask(
        vault_admin.SUBJECT_PROVIDER_APP_LIST,
        vault_admin.ProviderAppRef(tenant_id=caller.tenant_id, provider="*"),
        vault_admin.ProviderAppList,
    )
    return ProviderAppListView(provider_apps=[_view(app) for app in apps.provider_apps])


@router.put("/{provider}", response_model=ProviderAppView, summary="Create or update a provider app")
async def put_provider_app(
    gw: GatewayDep, caller: AdminDep, provider: ProviderId, body: ProviderAppIn
) -> ProviderAppView:
    """Store the tenant's OAuth client for a provider; settings are checked against the catalogue."""
    async with gw.runtime.sessions() as session:
        definition = await gw.catalogue.provider(session, caller.tenant_id, provider)
        own = await gw.catalogue.own_definition_json(session, caller.tenant_id, provider)
    if definition.oauth is None:
        raise invalid(f"provider {provider!r} uses API keys; it has no OAuth client")
    try:
        settings = resolve_settings(definition, body.settings)
    except SettingsError as error:
        raise invalid(str(error)) from None
    scopes = [part for scope in body.scopes for part in scope.split()]
    info = await gw.bus.ask(
        vault_admin.SUBJECT_PROVIDER_APP_PUT,
        vault_admin.PutProviderAppRequest(
            tenant_id=caller.tenant_id,
            provider=provider,
            client_id=body.client_id,
            client_secret=body.client_secret,
            webhook_secret=body.webhook_secret,
            scopes=list(dict.fromkeys(scopes)),
            settings=settings,
            allow_workspace_fallback=body.allow_workspace_fallback,
            enabled=body.enabled,
            actor=caller.actor,
            provider_definition=own,
        ),
        vault_admin.ProviderAppInfo,
        with_secrets=True,
    )
    return _view(info)


@router.get("/{provider}", response_model=ProviderAppView, summary="Read a provider app")
async def get_provider_app(gw: GatewayDep, caller: AdminDep, provider: ProviderId) -> ProviderAppView:
    """The provider app (whether secrets are set, never their values)."""
    info = await gw.bus.ask(
        vault_admin.SUBJECT_PROVIDER_APP_GET,
        vault_admin.ProviderAppRef(tenant_id=caller.tenant_id, provider=provider),
        vault_admin.ProviderAppInfo,
    )
    return _view(info)


@router.delete("/{provider}", response_model=ProviderAppDeletedView, summary="Disable a provider app")
async def delete_provider_app(
    gw: GatewayDep, caller: AdminDep, provider: ProviderId
) -> ProviderAppDeletedView:
    """Disable the provider app; every connection made with it is revoked."""
    deleted = await gw.bus.ask(
        vault_admin.SUBJECT_PROVIDER_APP_DELETE,
        vault_admin.ProviderAppDeleteRequest(
            tenant_id=caller.tenant_id, provider=provider, actor=caller.actor
        ),
        vault_admin.ProviderAppDeleted,
    )
    return ProviderAppDeletedView(provider=deleted.provider, revoked_connections=deleted.revoked_connections)
