"""The provider definition schema: what a catalogue entry (or a tenant's own provider) may say.

Every quirk of a real provider is a named field here, never code, so a new standard OAuth 2.0
provider is a few lines of YAML and a tenant-defined provider is validated by the same schema.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator

from grantline.providers.api_key_spec import ApiKeySpec
from grantline.providers.api_spec import ApiSpec
from grantline.providers.spec_base import BUILTIN_VARIABLES, Identifier, template_variables
from grantline.providers.spec_base import FrozenSpec as _Frozen
from grantline.providers.tenant_patterns import compile_pattern, value_matches

AuthKind = Literal["oauth2", "api_key", "mcp_oauth"]
PkceMode = Literal["required", "supported", "none"]
ScopeParam = Literal["scope", "user_scope", "none"]
ClientAuth = Literal["header", "body"]
BodyFormat = Literal["form", "json"]
IdentitySource = Literal["token_response", "userinfo"]

# A dotted path into a JSON object, e.g. "authed_user.access_token" or "owner.user.id".
JsonPath = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_@-]+(\.[A-Za-z0-9_@-]+)*$")]

# Words that mark a response field as secret: an account path may not name one (see AccountIdentity).
ACCOUNT_PATH_FORBIDDEN = ("token", "secret", "password", "code", "key", "assertion", "credential")


class SettingSpec(_Frozen):
    """A per-provider-app value that goes into URLs (Shopify shop, Atlassian cloud id, Entra tenant)."""

    label: str
    pattern: str = Field(description="full-match regex every value must satisfy before substitution")
    description: str = ""
    example: str | None = None
    default: str | None = None
    required: bool = True

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str) -> str:
        compile_pattern(value)  # PatternError is a ValueError: pydantic reports it on the field
        return value

    @model_validator(mode="after")
    def _default_matches(self) -> SettingSpec:
        if self.default is not None and not value_matches(self.pattern, self.default):
            raise ValueError(f"default {self.default!r} does not match pattern {self.pattern!r}")
        return self


class ScopeSpec(_Frozen):
    """Which scopes exist, which are asked for by default, and how they are sent."""

    param: ScopeParam = "scope"
    separator: str = " "
    default: tuple[str, ...] = ()
    # Scope id -> human description, shown on consent and in `GET /v1/providers`.
    available: dict[str, str] = Field(default_factory=dict)
    # The provider grants permissions in its own UI (Notion); scopes are shown but never sent.
    informational: bool = False
    # Scopes added to every request, custom scope lists included (Atlassian's `offline_access`:
    # without it there is no refresh token and the connection dies within the hour).
    always: tuple[str, ...] = ()
    # A new authorization replaces the previous grant (its tokens carry only what was asked for):
    # a connection can be narrowed by re-authorizing it with fewer scopes.
    narrowable: bool = False

    @model_validator(mode="after")
    def _defaults_are_described(self) -> ScopeSpec:
        for kind, scopes in (("default", self.default), ("always", self.always)):
            unknown = [scope for scope in scopes if scope not in self.available]
            if unknown:
                raise ValueError(f"{kind} scopes not listed in available: {', '.join(unknown)}")
        if self.param == "none" and self.default and not self.informational:
            raise ValueError("param 'none' sends no scopes; mark them informational or drop the defaults")
        return self


class RevocationSpec(_Frozen):
    """How to tell the provider a grant is gone (RFC 7009 unless a field says otherwise)."""

    url: str
    method: Literal["POST", "DELETE"] = "POST"
    # `bearer_token`: the token being revoked authenticates the call itself (Slack, Dropbox).
    client_auth: Literal["header", "body", "none", "bearer_token"] = "body"
    body_format: BodyFormat = "form"
    token_param: str = "token"
    send_token_type_hint: bool = True


class OAuthSpec(_Frozen):
    """Endpoints and request shape of an authorization-code flow."""

    authorize_url: str
    token_url: str
    # Some providers refresh at a different endpoint than they exchange codes (Figma).
    refresh_url: str | None = None
    revoke: RevocationSpec | None = None
    userinfo_url: str | None = None
    userinfo_method: Literal["GET", "POST"] = "GET"
    scopes: ScopeSpec = Field(default_factory=ScopeSpec)
    pkce: PkceMode = "none"
    # The parameter carrying the client id on authorize and token requests (TikTok: client_key).
    client_id_param: str = "client_id"
    authorize_params: dict[str, str] = Field(default_factory=dict)
    token_params: dict[str, str] = Field(default_factory=dict)
    client_auth: ClientAuth = "body"
    token_body_format: BodyFormat = "form"
    # Dotted path of the object holding access_token/refresh_token/expires_in/scope; "" = top level.
    token_location: str = ""
    # Parameters that pre-select the account at the provider's login (Google `login_hint` and `hd`,
    # Microsoft `login_hint` and `domain_hint`): set only for providers that document them.
    login_hint_param: str | None = None
    domain_hint_param: str | None = None
    # The issuer the provider sends as `iss` on every authorization redirect (RFC 9207); set only
    # for providers that send it (their metadata says `authorization_response_iss_parameter_supported`):
    # the gateway then refuses a redirect whose `iss` is missing or different.
    issuer: str | None = None

    @field_validator("token_location")
    @classmethod
    def _location_is_path(cls, value: str) -> str:
        if value and not re.fullmatch(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*", value):
            raise ValueError("token_location must be a dotted path such as 'authed_user'")
        return value

    @model_validator(mode="after")
    def _no_reserved_params(self) -> OAuthSpec:
        # The flow itself sets these; a definition overriding them would break state or PKCE checks.
        reserved = {"response_type", "redirect_uri", "state", "code_challenge", "code_challenge_method"}
        reserved |= {self.client_id_param, self.scopes.param} - {"none"}
        hints = {self.login_hint_param, self.domain_hint_param} - {None}
        if hints & reserved:
            raise ValueError("a hint parameter must not be one the flow sets")
        clashes = sorted(reserved & set(self.authorize_params))
        if clashes:
            raise ValueError(f"authorize_params must not set {', '.join(clashes)}")
        token_reserved = {"grant_type", "code", "redirect_uri", "code_verifier", "refresh_token"}
        clashes = sorted(token_reserved & set(self.token_params))
        if clashes:
            raise ValueError(f"token_params must not set {', '.join(clashes)}")
        return self

    def template_texts(self) -> dict[str, str]:
        """Every templated string, keyed by its field path (for validation and error messages)."""
        texts = {"authorize_url": self.authorize_url, "token_url": self.token_url}
        if self.refresh_url:
            texts["refresh_url"] = self.refresh_url
        if self.userinfo_url:
            texts["userinfo_url"] = self.userinfo_url
        if self.revoke:
            texts["revoke.url"] = self.revoke.url
        texts.update({f"authorize_params.{k}": v for k, v in self.authorize_params.items()})
        texts.update({f"token_params.{k}": v for k, v in self.token_params.items()})
        return texts


class RefreshPolicy(_Frozen):
    """How tokens age and how refresh responses must be read."""

    # Access tokens never expire and there is nothing to refresh (GitHub OAuth apps).
    non_expiring: bool = False
    # Every refresh returns a new refresh token and invalidates the old one (HubSpot, Asana, X).
    rotating: bool = False
    # Rotating, but the provider still accepts a rotated-away refresh token this many seconds after
    # its first use (Okta's grace period, Auth0's reuse interval). The vault relies on it to retry a
    # refresh whose answer was lost (a replica killed, an answer later than the lease); without it,
    # such a connection needs re-authorization.
    rotation_grace_seconds: int | None = Field(default=None, gt=0)
    # A refresh response without a refresh token means "keep using the old one" (Google, Spotify).
    keep_refresh_token_when_omitted: bool = True
    # Lifetime to assume when a response has no expires_in; None = treat such a token as non-expiring.
    default_expires_in: int | None = Field(default=None, gt=0)
    # Known lifetime of a refresh token when the response does not say (Microsoft: 90 days).
    refresh_token_lifetime: int | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> RefreshPolicy:
        if self.non_expiring and (self.rotating or self.default_expires_in):
            raise ValueError("non_expiring excludes rotating and default_expires_in")
        if self.rotation_grace_seconds is not None and not self.rotating:
            raise ValueError("rotation_grace_seconds applies to rotating refresh tokens only")
        return self


class AccountIdentity(_Frozen):
    """Where the external account (who granted) is read from.

    The account is shown to the tenant (API, events, audit), so a path may not lead to a field that
    names a secret: a tenant-defined provider could otherwise point it at the access token.
    """

    source: IdentitySource = "token_response"
    id_path: JsonPath
    name_path: JsonPath | None = None

    @field_validator("id_path", "name_path")
    @classmethod
    def _not_a_secret_field(cls, value: str | None) -> str | None:
        if value is not None and any(
            hint in segment.lower() for segment in value.split(".") for hint in ACCOUNT_PATH_FORBIDDEN
        ):
            raise ValueError(f"an account path may not name a secret field ({value})")
        return value


class AppSpec(_Frozen):
    """A product the provider's connection unlocks (`google` unlocks `gmail`)."""

    id: Identifier
    name: str
    category: Identifier


McpRegistration = Literal["client_metadata_document", "dynamic", "preregistered"]


class McpServerSpec(_Frozen):
    """What discovery found for a remote MCP server (RFC 9728, RFC 8414) and how Grantline registered.

    The OAuth section of the same definition carries the endpoints; this records where they came
    from, so a registration is only ever used with the issuer it was made at.
    """

    # The canonical server URI: the `resource` on authorize, token and refresh requests (RFC 8707).
    resource: str
    issuer: str
    resource_metadata_url: str
    registration: McpRegistration
    scopes_supported: tuple[str, ...] = ()
    discovered_at: str | None = None
    # What the registration was made with (Grantline's redirect URI, its metadata document's URL), so
    # the vault can register again on its own when the server forgets the client (`invalid_client`).
    redirect_uri: str | None = None
    client_metadata_url: str | None = None


class SettingDiscovery(_Frozen):
    """A setting read after the grant when the user did not give it (Atlassian's cloud id).

    `url` answers, for the new access token, a JSON list of the resources the grant reaches (or an
    object holding it at `list_path`); the setting takes `value_path` of the first one, or of the one
    whose `match_path` equals the setting named by `match_setting` when the user gave it.
    """

    setting: Identifier
    url: str
    list_path: str = ""
    value_path: JsonPath = "id"
    match_path: JsonPath | None = None
    match_setting: Identifier | None = None


class ProviderDefinition(_Frozen):
    """One provider: catalogue entry or tenant-defined, validated the same way."""

    id: Identifier
    name: str
    category: Identifier
    auth: AuthKind
    description: str = ""
    docs_url: str | None = None
    # How to register the OAuth client (or get the API key) at the provider, for the admin's form.
    setup_guide: str = Field(default="", max_length=1000)
    enabled: bool = True
    oauth: OAuthSpec | None = None
    api_key: ApiKeySpec | None = None
    settings: dict[str, SettingSpec] = Field(default_factory=dict)
    # Settings the vault finds after the grant when a connection was started without them.
    discover_settings: tuple[SettingDiscovery, ...] = ()
    # A templated base URL for API calls, e.g. Atlassian `https://api.atlassian.com/ex/jira/{cloud_id}`.
    api_base_url: str | None = None
    # Remote MCP server this grant is for (mcp_oauth providers).
    mcp_server_url: str | None = None
    # Set on MCP servers a tenant added by URL (`POST /v1/mcp-servers`): what discovery found.
    mcp: McpServerSpec | None = None
    # How the tool-call proxy calls the API with a connection's token (services/proxy).
    api: ApiSpec | None = None
    refresh: RefreshPolicy = Field(default_factory=RefreshPolicy)
    account: AccountIdentity | None = None
    webhook_scheme: str | None = None
    apps: tuple[AppSpec, ...] = ()

    @field_validator("docs_url")
    @classmethod
    def _docs_url_is_web(cls, value: str | None) -> str | None:
        # Shown as a link on the admin pages: a tenant's definition must not smuggle in `javascript:`.
        if value is not None and not re.fullmatch(r"https?://[^\s]+", value):
            raise ValueError("docs_url must be an http(s) URL")
        return value

    @field_validator("settings")
    @classmethod
    def _setting_names(cls, value: dict[str, SettingSpec]) -> dict[str, SettingSpec]:
        for name in value:
            if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
                raise ValueError(f"setting name {name!r} must be lower_snake_case")
            if name in BUILTIN_VARIABLES:
                raise ValueError(f"setting name {name!r} is reserved")
        return value

    @model_validator(mode="after")
    def _auth_kind_matches_sections(self) -> ProviderDefinition:
        if self.auth in ("oauth2", "mcp_oauth"):
            if self.oauth is None and not (self.auth == "mcp_oauth" and self.mcp_server_url):
                # A thin MCP entry (mcp_oauth, mcp_server_url, no oauth) is discovered at connect time.
                raise ValueError(f"auth '{self.auth}' needs an 'oauth' section (or, for MCP, mcp_server_url)")
            if self.api_key is not None:
                raise ValueError(f"auth '{self.auth}' must not have an 'api_key' section")
        else:
            if self.api_key is None:
                raise ValueError("auth 'api_key' needs an 'api_key' section with the fields to collect")
            if self.oauth is not None:
                raise ValueError("auth 'api_key' must not have an 'oauth' section")
        has_userinfo = bool(self.oauth and self.oauth.userinfo_url)
        if self.account and self.account.source == "userinfo" and not has_userinfo:
            raise ValueError("account.source 'userinfo' needs oauth.userinfo_url")
        return self

    @model_validator(mode="after")
    def _templates_are_declared(self) -> ProviderDefinition:
        texts = dict(self.oauth.template_texts()) if self.oauth else {}
        if self.api_base_url:
            texts["api_base_url"] = self.api_base_url
        if self.mcp_server_url:
            texts["mcp_server_url"] = self.mcp_server_url
        if self.api:
            texts.update(self.api.template_texts())
        declared = set(self.settings) | BUILTIN_VARIABLES
        for where, text in texts.items():
            undeclared = template_variables(text) - declared
            if undeclared:
                names = ", ".join(sorted(undeclared))
                raise ValueError(f"{where} uses undeclared template variable(s) {names}; add to settings")
        return self

    @model_validator(mode="after")
    def _discovered_settings_declared(self) -> ProviderDefinition:
        for discovery in self.discover_settings:
            named = [discovery.setting, *([discovery.match_setting] if discovery.match_setting else [])]
            undeclared = sorted(name for name in named if name not in self.settings)
            if undeclared:
                raise ValueError(f"discover_settings names undeclared setting(s) {', '.join(undeclared)}")
            if template_variables(discovery.url):
                raise ValueError("discover_settings.url must not be templated")
        return self

    @property
    def discovered_settings(self) -> frozenset[str]:
        """Settings that may be missing when a flow starts: the vault reads them after the grant."""
        return frozenset(discovery.setting for discovery in self.discover_settings)

    @model_validator(mode="after")
    def _unique_app_ids(self) -> ProviderDefinition:
        ids = [app.id for app in self.apps]
        if len(ids) != len(set(ids)):
            raise ValueError("app ids must be unique within a provider")
        return self

    @property
    def discovered_at_connect(self) -> bool:
        """A thin MCP entry: only the server URL is known; endpoints and client come from discovery."""
        return self.auth == "mcp_oauth" and self.oauth is None

    @property
    def categories(self) -> frozenset[str]:
        """The provider's own category plus those of the apps it unlocks."""
        return frozenset({self.category, *(app.category for app in self.apps)})

    def public_view(self) -> dict[str, Any]:
        """A JSON-able description for `GET /v1/providers` (no endpoints' internals are secret anyway)."""
        return self.model_dump(mode="json", exclude_none=True)
