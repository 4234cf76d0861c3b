"""Request/reply messages served by the vault (``vault.*``). Only ``ResolveReply`` carries a token."""

from datetime import datetime
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from grantline.contract.envelope import Message, ProviderAppName, ProviderId, TenantId

# Tenant-scoped: requests go to ``vault.resolve.<tenant>`` (``envelope.tenant_scoped``).
SUBJECT_RESOLVE = "vault.resolve"
SUBJECT_EXCHANGE = "vault.exchange"
SUBJECT_REFRESH = "vault.refresh"
SUBJECT_REVOKE = "vault.revoke"
# Tenant-scoped like resolve: ``vault.report.<tenant>`` (a server refused a resolved token, or said it
# needs more scope).
SUBJECT_REPORT = "vault.report"


class ResolveRequest(Message):
    """A tool call's request for the acting user's token, sent on ``vault.resolve.<tenant>``.

    Who is acting, for which run and app, comes from the run grant alone (``runs.admitted`` carries
    it); the vault answers only inside it: the grant's tenant (which must also be the subject's) and
    user, a provider it lists, scopes it allows, while the run is not finished and the grant current.
    """

    grant: SecretStr = Field(min_length=1, max_length=16_384)
    provider: str | None = Field(default=None, max_length=128)
    app: str | None = Field(default=None, max_length=128)
    tool: str | None = Field(default=None, max_length=200)
    scopes: list[str] = []
    # Which of the user's connections to the provider (several accounts, shops or sites): by id, or
    # by the provider account it was granted by. Neither: the default one. Either way only the grant's
    # user's connection (or the workspace's, when the provider app allows fallback) answers.
    connection_id: str | None = Field(default=None, min_length=1, max_length=64)
    account: str | None = Field(default=None, min_length=1, max_length=300)
    # Ask for the connection's settings even when it has none (the proxy templates API URLs with
    # them); a connection that has settings always sends them (`ResolveReply.settings`).
    include_settings: bool = False

    @model_validator(mode="after")
    def _provider_or_app(self) -> "ResolveRequest":
        if not (self.provider or self.app):
            raise ValueError("one of provider or app is required")
        if self.connection_id and self.account:
            raise ValueError("name a connection_id or an account, not both")
        return self


class ReportRequest(Message):
    """A server refused a token resolve handed out, sent on ``vault.report.<tenant>``.

    The reporter (the tool-call proxy, or a runner) presents the run grant, like a resolve, and names
    the connection the token was for. ``kind`` says what the server answered:

    - ``unauthorized`` (401): the first report (``after_refresh`` false) makes the vault refresh the
      connection once and answer the new token (a ``ResolveReply``) for one retry. A report with
      ``after_refresh`` (the refreshed token was refused too) makes the vault check the connection with
      the provider; a dead one becomes ``reauth_required`` and the answer says so.
    - ``insufficient_scope`` (403 with ``error="insufficient_scope"``, MCP servers and others):
      ``scopes`` are the scopes the server's challenge named. The vault marks those the connection
      lacks (``ConnectionInfo.missing_scopes``) and answers ``missing_scopes`` naming them; the user
      re-authorizes the same connection with them (``POST /v1/connections/initiate`` with
      ``connection_id`` and ``scopes``), which asks for the union and clears the mark.
    """

    grant: SecretStr = Field(min_length=1, max_length=16_384)
    provider: str | None = Field(default=None, max_length=128)
    app: str | None = Field(default=None, max_length=128)
    tool: str | None = Field(default=None, max_length=200)
    scopes: list[str] = Field(default=[], max_length=100)
    connection_id: str = Field(min_length=1, max_length=200)
    after_refresh: bool = False
    kind: Literal["unauthorized", "insufficient_scope"] = "unauthorized"

    @model_validator(mode="after")
    def _provider_or_app(self) -> "ReportRequest":
        if not (self.provider or self.app):
            raise ValueError("one of provider or app is required")
        return self


class ResolveReply(Message):
    access_token: SecretStr
    token_type: str = "Bearer"
    expires_at: datetime | None
    scopes: list[str]
    connection_id: str
    # For an MCP connection: the server the token is for (its audience); call tools there.
    mcp_server_url: str | None = None
    # The connection's settings (Shopify shop, Atlassian cloud id): what a tool (or the proxy's URL
    # templates) builds URLs from; `api_base_url` is the catalogue's API base with them filled in.
    settings: dict[str, str] = {}
    api_base_url: str | None = None
    # An API-key connection's every field by id (Trello's `api_key` and `token`, ...); `access_token`
    # is the first of them. Empty for OAuth connections.
    fields: dict[str, SecretStr] = {}


class ExchangeRequest(Message):
    tenant_id: TenantId
    connection_id: str
    owner: str
    provider: ProviderId
    code: SecretStr
    code_verifier: SecretStr | None = None
    redirect_uri: str
    requested_scopes: list[str] = []
    # Re-authorize `connection_id`: the vault refuses unless that connection has this tenant, owner
    # and provider. The definition comes from the catalogue or the vault's own tenant providers.
    reauthorize: bool = False
    # Provider-app settings the token URL may need (Shopify shop, Atlassian cloud id).
    settings: dict[str, str] = {}
    name: str | None = None
    # The account the user was asked to grant as (a login hint: its id or email) or the domain its
    # email must be in: a grant by anyone else is refused (`wrong_account`) and stored nowhere.
    expected_account: str | None = Field(default=None, max_length=320)
    expected_domain: str | None = Field(default=None, max_length=253)
    # Narrowing a re-authorized connection: its scopes become what this grant has (not the union).
    replace_scopes: bool = False
    # Where the gateway publishes the tenant's Client ID Metadata Document: an MCP server that no
    # longer knows Grantline's client (`invalid_client`) is discovered and registered again with it.
    client_metadata_url: str | None = Field(default=None, max_length=2048)
    # The tenant's named provider app the flow was started with; None: its default app, else the
    # platform's. A re-authorization names the app the connection was made with.
    provider_app: ProviderAppName | None = None


class ConnectionInfo(Message):
    """Connection metadata: what any reply about a connection may say. Never a token."""

    connection_id: str
    tenant_id: TenantId
    owner: str
    provider: ProviderId
    status: str
    scopes: list[str]
    # Scopes a server said this connection lacks (step-up); re-authorizing with them clears them.
    missing_scopes: list[str] = []
    account: str | None = None
    expires_at: datetime | None = None
    last_refreshed_at: datetime | None = None
    last_used_at: datetime | None = None
    created_at: datetime | None = None
    is_default: bool = True
    name: str | None = None
    # What the connection was made with (shop, site, cloud id): never a secret.
    settings: dict[str, str] = {}
    # The named provider app the connection was made with (None: the provider's default app).
    provider_app: str | None = None


class RefreshRequest(Message):
    tenant_id: TenantId
    connection_id: str
    # Set by the refresher so an early refresh is not repeated by a second worker.
    only_if_expiring_before: datetime | None = None


class RefreshReply(Message):
    connection_id: str
    expires_at: datetime | None
    refreshed: bool


class RevokeRequest(Message):
    tenant_id: TenantId
    connection_id: str
    reason: str = "user"
    actor: str = "api"


class OkReply(Message):
    ok: bool = True
