"""Request/reply messages served by the vault (``vault.*``). Only ``ResolveReply`` carries a token."""

from datetime import datetime

from pydantic import Field, SecretStr, model_validator

from grantline.common.contract.envelope import Message, ProviderId, TenantId

# Tenant-scoped: requests go to ``vault.resolve.<tenant>`` (``envelope.tenant_scoped``).
SUBJECT_RESOLVE = "vault.resolve"
SUBJECT_EXCHANGE = "vault.exchange"
SUBJECT_REFRESH = "vault.refresh"
SUBJECT_REVOKE = "vault.revoke"


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

    @model_validator(mode="after")
    def _provider_or_app(self) -> "ResolveRequest":
        if not (self.provider or self.app):
            raise ValueError("one of provider or app is required")
        return self


class ResolveReply(Message):
    access_token: SecretStr
    token_type: str = "Bearer"
    expires_at: datetime | None
    scopes: list[str]
    connection_id: str


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


class ConnectionInfo(Message):
    """Connection metadata: what any reply about a connection may say. Never a token."""

    connection_id: str
    tenant_id: TenantId
    owner: str
    provider: ProviderId
    status: str
    scopes: list[str]
    account: str | None = None
    expires_at: datetime | None = None
    last_refreshed_at: datetime | None = None
    last_used_at: datetime | None = None
    created_at: datetime | None = None
    is_default: bool = True
    name: str | None = None


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
