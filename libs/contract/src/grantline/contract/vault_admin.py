"""Request/reply messages the gateway sends the vault to manage provider apps and connections.

Secrets travel only towards the vault (write-only); no reply here ever carries one.
"""

from datetime import datetime
from typing import Any

from pydantic import Field, SecretStr

from grantline.contract.envelope import Message, ProviderAppName, ProviderId, TenantId
from grantline.contract.vault import ConnectionInfo

SUBJECT_PROVIDER_APP_PUT = "vault.provider_apps.put"
SUBJECT_PROVIDER_APP_GET = "vault.provider_apps.get"
SUBJECT_PROVIDER_APP_LIST = "vault.provider_apps.list"
SUBJECT_PROVIDER_APP_DELETE = "vault.provider_apps.delete"
SUBJECT_CONNECTION_API_KEY = "vault.connections.api_key"
SUBJECT_CONNECTION_LIST = "vault.connections.list"
SUBJECT_CONNECTION_GET = "vault.connections.get"
SUBJECT_CONNECTION_SET_DEFAULT = "vault.connections.set_default"
# Delete a revoked connection for good (it no longer shows anywhere); replies with what it was.
SUBJECT_CONNECTION_REMOVE = "vault.connections.remove"
SUBJECT_WEBHOOK_VERIFY = "vault.webhooks.verify"
# Tenant-defined providers (POST /v1/providers): the vault keeps them, and acts only on definitions
# from the catalogue or this store, never on one a request carries.
SUBJECT_TENANT_PROVIDER_PUT = "vault.providers.put"
SUBJECT_TENANT_PROVIDER_GET = "vault.providers.get"
SUBJECT_TENANT_PROVIDER_LIST = "vault.providers.list"
SUBJECT_TENANT_PROVIDER_DELETE = "vault.providers.delete"
SUBJECT_TENANT_PROVIDER_ENABLE = "vault.providers.enable"
MAX_TENANT_PROVIDERS = 200
# Remote MCP servers (POST /v1/mcp-servers): the vault discovers, registers and keeps the result as a
# tenant provider (list, get and delete go through the tenant-provider subjects).
SUBJECT_MCP_SERVER_ADD = "vault.mcp_servers.add"


class PutProviderAppRequest(Message):
    tenant_id: TenantId
    provider: ProviderId
    # None: the provider's default app; a name: one more app of the tenant for the provider (its own
    # OAuth client for some connections). A named app shares no workspace connection.
    name: ProviderAppName | None = None
    client_id: str = Field(min_length=1, max_length=512)
    # None keeps the stored secret (an edit that does not change it).
    client_secret: SecretStr | None = None
    # Provider webhook signing secret (Slack signing secret, GitHub webhook secret), write-only.
    webhook_secret: SecretStr | None = None
    scopes: list[str] = []
    settings: dict[str, str] = {}
    allow_workspace_fallback: bool = False
    # Every user acts through the workspace connection, even one who connected their own.
    force_workspace_connection: bool = False
    enabled: bool = True
    actor: str = "api"


class ProviderAppRef(Message):
    tenant_id: TenantId
    provider: ProviderId
    # For a flow (and the connect pages): without a tenant app, the operator's platform app answers
    # (its client id, scopes and settings; `platform: true`). The tenant's own pages never ask so.
    or_platform: bool = False
    # A named app of the tenant (never a platform one: or_platform does not apply to a name).
    name: ProviderAppName | None = None


class ProviderAppDeleteRequest(Message):
    tenant_id: TenantId
    provider: ProviderId
    name: ProviderAppName | None = None
    actor: str = "api"


class ProviderAppInfo(Message):
    tenant_id: TenantId
    provider: ProviderId
    # The app's id: its webhook URL is `/v1/webhooks/{provider}/{id}`.
    id: str | None = None
    client_id: str
    has_client_secret: bool
    has_webhook_secret: bool = False
    scopes: list[str]
    settings: dict[str, str]
    allow_workspace_fallback: bool
    force_workspace_connection: bool = False
    enabled: bool
    created_at: datetime | None = None
    updated_at: datetime | None = None
    # The operator's platform app, standing in for a tenant without its own (never its secrets).
    platform: bool = False
    # None for the provider's default app; else the name a connection's flow gives (`provider_app`).
    name: str | None = None


class ProviderAppList(Message):
    provider_apps: list[ProviderAppInfo]


class ProviderAppDeleted(Message):
    provider: ProviderId
    revoked_connections: int
    name: str | None = None


class StoreApiKeyRequest(Message):
    tenant_id: TenantId
    owner: str = Field(pattern=r"^(user:.+|workspace)$")
    provider: ProviderId
    # The fields the provider's definition asks for (e.g. {"api_key": ...}), each write-only.
    fields: dict[str, SecretStr]
    name: str | None = None
    actor: str = "api"
    # A workspace key (owner "workspace") that serves every user of the tenant without their own.
    shared: bool = False


class ListConnectionsRequest(Message):
    tenant_id: TenantId
    owner: str | None = None
    provider: str | None = None
    status: str | None = None
    cursor: str | None = None
    limit: int = Field(default=50, ge=1, le=500)


class ConnectionList(Message):
    connections: list[ConnectionInfo]
    next_cursor: str | None = None


class ConnectionRef(Message):
    tenant_id: TenantId
    connection_id: str


class WebhookVerifyRequest(Message):
    provider: ProviderId
    body: bytes
    headers: dict[str, str]
    # The app the delivery's URL names (`/v1/webhooks/{provider}/{app id}`): only its secret is tried.
    # None for the deprecated per-provider URL, where every tenant's secret is tried.
    provider_app_id: str | None = None


class WebhookConnection(Message):
    """A connection a verified webhook is about, with its tenant."""

    tenant_id: TenantId
    connection_id: str


class WebhookVerdict(Message):
    """What the vault concluded about a webhook; carries no secret and no token."""

    verified: bool
    reason: str | None = None
    # "google_risc" for a security event token: RFC 8935 wants a refused one answered 400, not 401.
    scheme: str | None = None
    # The tenant whose app verified it; None for a platform app, whose connections span tenants.
    tenant_id: str | None = None
    # The app whose secret (or client id) verified it: deliveries are de-duplicated per app.
    provider_app_id: str | None = None
    kind: str | None = None
    delivery_id: str | None = None
    account: str | None = None
    revoked_tokens: bool = False
    # The named accounts' connections made with that app (a platform app's: in every tenant).
    connections: list[WebhookConnection] = []
    challenge: str | None = None


class PutTenantProviderRequest(Message):
    """Define (or replace) a tenant's own provider; the vault validates it against the catalogue schema."""

    tenant_id: TenantId
    definition: dict[str, Any]
    actor: str = "api"
    # Keep a definition already stored: the gateway's hand-over of rows it kept before never overwrites.
    only_if_absent: bool = False


class TenantProviderRef(Message):
    tenant_id: TenantId
    provider: ProviderId


class TenantProviderListRequest(Message):
    tenant_id: TenantId


class TenantProviderInfo(Message):
    tenant_id: TenantId
    provider: ProviderId
    definition: dict[str, Any]
    # On a put: whether the definition is new (False when one was replaced or kept).
    created: bool = False


class TenantProviderList(Message):
    tenant_id: TenantId
    definitions: list[dict[str, Any]]
    # Providers (catalogue or the tenant's own) the tenant switched off.
    disabled: list[str] = []


class SetProviderEnabledRequest(Message):
    """Switch a provider (a catalogue one or the tenant's own) on or off for one tenant."""

    tenant_id: TenantId
    provider: ProviderId
    enabled: bool
    actor: str = Field(default="api", max_length=200)


class ProviderEnablement(Message):
    tenant_id: TenantId
    provider: ProviderId
    enabled: bool


class TenantProviderDeleted(Message):
    tenant_id: TenantId
    provider: ProviderId
    deleted: bool


class AddMcpServerRequest(Message):
    """Discover a remote MCP server from its URL, register with its authorization server, keep it.

    The gateway says where its Client ID Metadata Document for this tenant is published and which
    redirect URI it serves; a pre-registered client (id, optional secret) is used instead of
    registering when given.
    """

    tenant_id: TenantId
    url: str = Field(min_length=8, max_length=2048)
    name: str | None = Field(default=None, min_length=1, max_length=100)
    client_metadata_url: str = Field(min_length=8, max_length=2048)
    redirect_uri: str = Field(min_length=8, max_length=2048)
    client_name: str = Field(default="Grantline", min_length=1, max_length=100)
    client_id: str | None = Field(default=None, min_length=1, max_length=512)
    client_secret: SecretStr | None = None
    # Rediscover a server kept under this id (the gateway does when the discovery is stale).
    provider: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]{0,63}$")
    # Register again even at the same issuer: the server said it no longer knows the kept client.
    reregister: bool = False
    actor: str = "api"


class McpServerInfo(Message):
    """What discovery found and how Grantline registered (never a client secret)."""

    tenant_id: TenantId
    provider: ProviderId
    server_url: str
    issuer: str
    registration: str
    scopes: list[str]
    scopes_supported: list[str] = []
    client_id: str
    created: bool = False
