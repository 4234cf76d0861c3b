"""Authorize URLs, per-app settings validation and PKCE helpers (pure functions, no I/O)."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections.abc import Mapping, Sequence
from urllib.parse import quote, urlencode, urlsplit, urlunsplit

from grantline.providers.definition import OAuthSpec, ProviderDefinition
from grantline.providers.spec_base import TEMPLATE_VARIABLE
from grantline.providers.tenant_patterns import value_matches

# RFC 7636 section 4.1: 43-128 characters from the unreserved set.
_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
_SHOWN_VALUE_LIMIT = 60


class SettingsError(ValueError):
    """A provider-app setting is missing, unknown or does not match its pattern."""


class PkceRequiredError(ValueError):
    """The provider requires PKCE but no code challenge was given."""


class NotAnOAuthProviderError(ValueError):
    """An OAuth operation was asked of an API-key provider."""


def oauth_spec(definition: ProviderDefinition) -> OAuthSpec:
    """The OAuth section of a definition; raises NotAnOAuthProviderError for API-key providers."""
    if definition.oauth is None:
        raise NotAnOAuthProviderError(f"provider {definition.id!r} uses auth kind {definition.auth!r}")
    return definition.oauth


def _shown(value: str) -> str:
    # Settings are not secrets, but a hostile value must not flood logs or error pages.
    return repr(value if len(value) <= _SHOWN_VALUE_LIMIT else value[:_SHOWN_VALUE_LIMIT] + "...")


def resolve_settings(definition: ProviderDefinition, settings: Mapping[str, str] | None) -> dict[str, str]:
    """Validate a provider app's or a connection's settings against the definition; fill defaults.

    A setting the vault discovers after the grant (`discover_settings`) may be missing.
    """
    given = dict(settings or {})
    unknown = sorted(set(given) - set(definition.settings))
    if unknown:
        raise SettingsError(f"provider {definition.id!r} has no setting(s) {', '.join(unknown)}")
    resolved: dict[str, str] = {}
    for name, spec in definition.settings.items():
        value = given.get(name, spec.default)
        if value is None:
            if spec.required and name not in definition.discovered_settings:
                raise SettingsError(f"provider {definition.id!r} needs setting {name!r} ({spec.label})")
            continue
        if not isinstance(value, str) or not value_matches(spec.pattern, value):
            shown = _shown(value) if isinstance(value, str) else type(value).__name__
            raise SettingsError(f"setting {name!r} value {shown} does not match {spec.pattern}")
        resolved[name] = value
    return resolved


def with_always_scopes(definition: ProviderDefinition, scopes: Sequence[str]) -> list[str]:
    """The scopes to ask for: `scopes` plus those the provider needs on every request (`always`)."""
    always = definition.oauth.scopes.always if definition.oauth else ()
    return list(dict.fromkeys([*scopes, *always]))


def render_template(text: str, values: Mapping[str, str]) -> str:
    """Substitute `{name}` placeholders; every value is percent-encoded so it cannot change the URL shape."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise SettingsError(f"no value for template variable {name!r}")
        return quote(values[name], safe="")

    return TEMPLATE_VARIABLE.sub(replace, text)


def template_values(
    definition: ProviderDefinition, settings: Mapping[str, str] | None, *, client_id: str | None = None
) -> dict[str, str]:
    """Validated settings plus built-in variables, ready for render_template."""
    values = resolve_settings(definition, settings)
    if client_id is not None:
        values["client_id"] = client_id
    return values


def new_code_verifier() -> str:
    """A fresh PKCE code verifier (64 URL-safe characters, 384 bits)."""
    return secrets.token_urlsafe(48)


def code_challenge_s256(verifier: str) -> str:
    """The S256 code challenge for a verifier (RFC 7636 section 4.2)."""
    if not _VERIFIER.fullmatch(verifier):
        raise ValueError("code verifier must be 43-128 characters of [A-Za-z0-9-._~]")
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def scope_string(definition: ProviderDefinition, scopes: Sequence[str] | None) -> str | None:
    """The scope value to send (None when this provider takes no scope parameter or none are asked)."""
    spec = oauth_spec(definition).scopes
    if spec.param == "none" or spec.informational:
        return None
    wanted = list(spec.default) if scopes is None else list(scopes)
    unique = list(dict.fromkeys(wanted))
    return spec.separator.join(unique) if unique else None


def build_authorize_url(
    definition: ProviderDefinition,
    *,
    client_id: str,
    redirect_uri: str,
    scopes: Sequence[str] | None,
    state: str,
    code_challenge: str | None = None,
    settings: Mapping[str, str] | None = None,
    login_hint: str | None = None,
    domain_hint: str | None = None,
) -> str:
    """The URL to send the user's browser to; `scopes=None` asks for the provider's defaults.

    Hints go in only where the definition names their parameter (the caller checks they are wanted).
    """
    oauth = oauth_spec(definition)
    if oauth.pkce == "required" and not code_challenge:
        raise PkceRequiredError(f"provider {definition.id!r} requires PKCE; pass a code_challenge")
    values = template_values(definition, settings, client_id=client_id)
    params: dict[str, str] = {
        "response_type": "code",
        oauth.client_id_param: client_id,
        "redirect_uri": redirect_uri,
        "state": state,
    }
    scope_value = scope_string(definition, scopes)
    if scope_value is not None:
        params[oauth.scopes.param] = scope_value
    if code_challenge and oauth.pkce != "none":
        params["code_challenge"] = code_challenge
        params["code_challenge_method"] = "S256"
    for name, value in oauth.authorize_params.items():
        params.setdefault(name, render_template(value, values))
    if login_hint and oauth.login_hint_param:
        params[oauth.login_hint_param] = login_hint
    if domain_hint and oauth.domain_hint_param:
        params[oauth.domain_hint_param] = domain_hint
    base = urlsplit(render_template(oauth.authorize_url, values))
    query = "&".join(part for part in (base.query, urlencode(params, quote_via=quote)) if part)
    return urlunsplit((base.scheme, base.netloc, base.path, query, base.fragment))
