"""Request/reply messages the gateway sends the vault to manage provider apps and connections.

Secrets travel only towards the vault (write-only); no reply here ever carries one.
"""

from datetime import datetime
from typing import Any

from pydantic import Field, SecretStr

from grantline.common.contract.envelope import Message, ProviderId, TenantId
from grantline.common.contract.vault import ConnectionInfo

SUBJECT_PROVIDER_APP_PUT = "vault.provider_apps.put"
SUBJECT_PROVIDER_APP_GET = "vault.provider_apps.get"
SUBJECT_PROVIDER_APP_LIST = "vault.provider_apps.list"
SUBJECT_PROVIDER_APP_DELETE = "vault.provider_apps.delete"
SUBJECT_CONNECTION_API_KEY = "vault.connections.api_key"
SUBJECT_CONNECTION_LIST = "vault.connections.list"
SUBJECT_CONNECTION_GET = "vault.connections.get"
SUBJECT_CONNECTION_SET_DEFAULT = "vault.connections.set_default"
SUBJECT_WEBHOOK_VERIFY = "vault.webhooks.verify"
# Tenant-defined providers (POST /v1/providers): the vault keeps them, and acts only on definitions
# from the catalogue or this store, never on one a request carries.
SUBJECT_TENANT_PROVIDER_PUT = "vault.providers.put"
SUBJECT_TENANT_PROVIDER_GET = "vault.providers.get"
SUBJECT_TENANT_PROVIDER_LIST = "vault.providers.list"
SUBJECT_TENANT_PROVIDER_DELETE = "vault.providers.delete"
MAX_TENANT_PROVIDERS = 200


class PutProviderAppRequest(Message):
    tenant_id: TenantId
    provider: ProviderId
    client_id: str = Field(min_length=1, max_length=512)
    # None keeps the stored secret (an edit that does not change it).
    client_secret: SecretStr | None = None
    # Provider webhook signing secret (Slack signing secret, GitHub webhook secret), write-only.
    webhook_secret: SecretStr | None = None
    scopes: list[str] = []
    settings: dict[str, str] = {}
    allow_workspace_fallback: bool = False
    enabled: bool = True
    actor: str = "api"


class ProviderAppRef(Message):
    tenant_id: TenantId
    provider: ProviderId


class ProviderAppDeleteRequest(Message):
    tenant_id: TenantId
    provider: ProviderId
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
    enabled: bool
    created_at: datetime | None = None
    updated_at: datetime | None = None


class ProviderAppList(Message):
    provider_apps: list[ProviderAppInfo]


class ProviderAppDeleted(Message):
    provider: ProviderId
    revoked_connections: int


class StoreApiKeyRequest(Message):
    tenant_id: TenantId
    owner: str = Field(pattern=r"^(user:.+|workspace)$")
    provider: ProviderId
    # The fields the provider's definition asks for (e.g. {"api_key": ...}), each write-only.
    fields: dict[str, SecretStr]
    name: str | None = None
    actor: str = "api"


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


class WebhookVerdict(Message):
    """What the vault concluded about a webhook; carries no secret and no token."""

    verified: bool
    reason: str | None = None
    # "google_risc" for a security event token: RFC 8935 wants a refused one answered 400, not 401.
    scheme: str | None = None
    tenant_id: str | None = None
    kind: str | None = None
    delivery_id: str | None = None
    account: str | None = None
    revoked_tokens: bool = False
    connection_ids: list[str] = []
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


class TenantProviderDeleted(Message):
    tenant_id: TenantId
    provider: ProviderId
    deleted: bool
