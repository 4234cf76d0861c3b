"""The provider definition schema: what a catalogue entry (or a tenant's own provider) may say.

Every quirk of a real provider is a named field here, never code, so a new standard OAuth 2.0
provider is a few lines of YAML and a tenant-defined provider is validated by the same schema.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from grantline.providers.tenant_patterns import compile_pattern, value_matches

AuthKind = Literal["oauth2", "api_key", "mcp_oauth"]
PkceMode = Literal["required", "supported", "none"]
ScopeParam = Literal["scope", "user_scope", "none"]
ClientAuth = Literal["header", "body"]
BodyFormat = Literal["form", "json"]
IdentitySource = Literal["token_response", "userinfo"]

Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)]
# A dotted path into a JSON object, e.g. "authed_user.access_token" or "owner.user.id".
JsonPath = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_@-]+(\.[A-Za-z0-9_@-]+)*$")]

# Words that mark a response field as secret: an account path may not name one (see AccountIdentity).
ACCOUNT_PATH_FORBIDDEN = ("token", "secret", "password", "code", "key", "assertion", "credential")

# `{name}` placeholders in URLs and parameter values.
TEMPLATE_VARIABLE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Placeholders the library fills itself; they are not tenant settings.
BUILTIN_VARIABLES = frozenset({"client_id"})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def template_variables(text: str) -> set[str]:
    """The `{name}` placeholders used in a URL or parameter value."""
    return set(TEMPLATE_VARIABLE.findall(text))


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

    @model_validator(mode="after")
    def _defaults_are_described(self) -> ScopeSpec:
        unknown = [scope for scope in self.default if scope not in self.available]
        if unknown:
            raise ValueError(f"default scopes not listed in available: {', '.join(unknown)}")
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


class ApiKeyField(_Frozen):
    """One value the user types for an API-key connection."""

    id: Identifier
    label: str
    secret: bool = True
    pattern: str | None = None
    description: str = ""

    @field_validator("pattern")
    @classmethod
    def _pattern_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            compile_pattern(value)  # PatternError is a ValueError: pydantic reports it on the field
        return value


class ApiKeySpec(_Frozen):
    """Fields to collect and how the key is presented to the provider's API."""

    fields: tuple[ApiKeyField, ...] = Field(min_length=1)
    # Free-form hint for tool authors, e.g. "Authorization: Bearer {api_key}" or "X-Api-Key header".
    usage: str = ""

    @model_validator(mode="after")
    def _unique_ids(self) -> ApiKeySpec:
        ids = [f.id for f in self.fields]
        if len(ids) != len(set(ids)):
            raise ValueError("api_key field ids must be unique")
        return self


class AppSpec(_Frozen):
    """A product the provider's connection unlocks (`google` unlocks `gmail`)."""

    id: Identifier
    name: str
    category: Identifier


class ProviderDefinition(_Frozen):
    """One provider: catalogue entry or tenant-defined, validated the same way."""

    id: Identifier
    name: str
    category: Identifier
    auth: AuthKind
    description: str = ""
    docs_url: str | None = None
    enabled: bool = True
    oauth: OAuthSpec | None = None
    api_key: ApiKeySpec | None = None
    settings: dict[str, SettingSpec] = Field(default_factory=dict)
    # A templated base URL for API calls, e.g. Atlassian `https://api.atlassian.com/ex/jira/{cloud_id}`.
    api_base_url: str | None = None
    # Remote MCP server this grant is for (mcp_oauth providers).
    mcp_server_url: str | None = None
    refresh: RefreshPolicy = Field(default_factory=RefreshPolicy)
    account: AccountIdentity | None = None
    webhook_scheme: str | None = None
    apps: tuple[AppSpec, ...] = ()

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
            if self.oauth is None:
                raise ValueError(f"auth '{self.auth}' needs an 'oauth' section")
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
        declared = set(self.settings) | BUILTIN_VARIABLES
        for where, text in texts.items():
            undeclared = template_variables(text) - declared
            if undeclared:
                names = ", ".join(sorted(undeclared))
                raise ValueError(f"{where} uses undeclared template variable(s) {names}; add to settings")
        return self

    @model_validator(mode="after")
    def _unique_app_ids(self) -> ProviderDefinition:
        ids = [app.id for app in self.apps]
        if len(ids) != len(set(ids)):
            raise ValueError("app ids must be unique within a provider")
        return self

    @property
    def categories(self) -> frozenset[str]:
        """The provider's own category plus those of the apps it unlocks."""
        return frozenset({self.category, *(app.category for app in self.apps)})

    def public_view(self) -> dict[str, Any]:
        """A JSON-able description for `GET /v1/providers` (no endpoints' internals are secret anyway)."""
        return self.model_dump(mode="json", exclude_none=True)
