"""What the API returns and the pages show: the view models both import (never a routes module).

The class names are the schema names of the OpenAPI document; renaming one changes the document.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from grantline.auth_gateway.service.flow_request import MAX_SCOPES, InitiateInput
from grantline.contract import vault, vault_admin
from grantline.contract.envelope import PROVIDER_APP_NAME_PATTERN
from grantline.providers.definition import ProviderDefinition

UserId = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
# A tenant's named provider app (`PUT /v1/provider-apps/{provider}/apps/{name}`).
ProviderAppName = Annotated[str, Field(pattern=PROVIDER_APP_NAME_PATTERN, description="a named provider app")]


# -- connections ----------------------------------------------------------------------------------


class InitiateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: UserId | None = None
    workspace: bool = False
    provider: str = Field(min_length=1, max_length=64)
    scopes: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None, max_length=MAX_SCOPES, description="default: the provider app's or the catalogue's"
    )
    return_to: str = Field(min_length=1, max_length=2048, description="must match the tenant's allow-list")
    connection_id: str | None = Field(
        default=None, max_length=64, description="re-authorize this connection (keeps its id and name)"
    )
    name: str | None = Field(
        default=None, min_length=1, max_length=200, description="the connection's name (default: the account)"
    )
    settings: dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=dict,
        max_length=20,
        description="this connection's own settings (Shopify shop, Atlassian site), over the provider app's",
    )

    login_hint: str | None = Field(
        default=None,
        min_length=1,
        max_length=320,
        pattern=r"^[^\x00-\x20\x7f]+$",
        description="account (email or id) to grant as, where the provider takes a hint; others are refused",
    )
    domain_hint: str | None = Field(
        default=None,
        max_length=253,
        pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$",
        description="the email domain the account must be in, where the provider takes a hint",
    )

    narrow: bool = Field(
        default=False,
        description="with connection_id and scopes: keep only these (providers that allow it)",
    )
    provider_app: ProviderAppName | None = Field(
        default=None,
        description=(
            "make the connection with the tenant's provider app of this name (its own OAuth client, e.g."
            " for a second shop); default: the provider's default app. A re-authorization always uses the"
            " connection's own app"
        ),
    )

    def flow_input(self) -> InitiateInput:
        """The same request as the OAuth flow takes it."""
        return InitiateInput(
            provider=self.provider,
            return_to=self.return_to,
            user_id=self.user_id,
            workspace=self.workspace,
            scopes=self.scopes,
            connection_id=self.connection_id,
            name=self.name,
            settings=dict(self.settings),
            login_hint=self.login_hint,
            domain_hint=self.domain_hint,
            narrow=self.narrow,
            provider_app=self.provider_app,
        )


class ConnectionView(BaseModel):
    connection_id: str
    owner: str
    user_id: str | None
    provider: str
    status: str
    scopes: list[str]
    # Scopes a server said the connection lacks: re-authorize it with them (step-up).
    missing_scopes: list[str] = []
    account: str | None = None
    expires_at: datetime | None = None
    last_refreshed_at: datetime | None = None
    last_used_at: datetime | None = None
    created_at: datetime | None = None
    is_default: bool = True
    name: str | None = None
    # Settings the connection was made with (shop, site, cloud id); never a secret.
    settings: dict[str, str] = {}
    provider_app: str | None = Field(
        default=None,
        description="the named provider app the connection was made with (none: the default app)",
    )


class ConnectionPage(BaseModel):
    connections: list[ConnectionView]
    next_cursor: str | None = None


def connection_view(info: vault.ConnectionInfo) -> ConnectionView:
    """The public view of a connection (metadata only)."""
    data = info.model_dump(exclude={"tenant_id"})
    user_id = info.owner.removeprefix("user:") if info.owner.startswith("user:") else None
    return ConnectionView(**data, user_id=user_id)


# -- the catalogue as a tenant sees it -------------------------------------------------------------


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
    setup_guide: str = Field(default="", description="how to register the app (or get a key) at the provider")
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


def is_connectable(provider: ProviderView) -> bool:
    """OAuth, enabled, with a provider app (or the vault did not say): a user may start a flow for it."""
    return provider.auth != "api_key" and provider.enabled and provider.configured is not False


def default_scope_ids(provider: ProviderView) -> list[str]:
    """The catalogue's default scopes for a provider."""
    return [s.id for s in provider.scopes if s.default]


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
        setup_guide=definition.setup_guide,
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


# -- provider apps (the tenant's OAuth clients) ----------------------------------------------------


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
    force_workspace_connection: bool = Field(
        default=False,
        description=(
            "every user acts through the workspace connection, even one who connected their own"
            " (a shared service account); only the workspace connection satisfies requirements"
        ),
    )
    enabled: bool = True


class ProviderAppView(BaseModel):
    provider: str
    name: str | None = Field(default=None, description="none for the provider's default app")
    id: str | None = None
    webhook_path: str | None = Field(
        default=None, description="where the provider sends this app's webhooks: `{public URL}{webhook_path}`"
    )
    client_id: str
    has_client_secret: bool
    has_webhook_secret: bool
    scopes: list[str]
    settings: dict[str, str]
    allow_workspace_fallback: bool
    force_workspace_connection: bool = False
    enabled: bool
    created_at: datetime | None = None
    updated_at: datetime | None = None


class ProviderAppListView(BaseModel):
    provider_apps: list[ProviderAppView]


def provider_app_view(info: vault_admin.ProviderAppInfo) -> ProviderAppView:
    """The public view of a provider app (whether secrets are set, never their values)."""
    webhook_path = f"/v1/webhooks/{info.provider}/{info.id}" if info.id else None
    return ProviderAppView(**info.model_dump(exclude={"tenant_id", "platform"}), webhook_path=webhook_path)
