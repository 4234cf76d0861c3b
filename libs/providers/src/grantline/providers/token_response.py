"""Reading a provider's token response into a TokenSet, whatever shape the provider uses."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr

from grantline.providers.authorize import oauth_spec
from grantline.providers.definition import ProviderDefinition

# Re-exported so callers find request building and response parsing in one place.
from grantline.providers.token_request import (
    Grant,
    ProviderRequest,
    build_revocation_request,
    build_token_request,
    build_userinfo_request,
)

__all__ = [
    "ExternalAccount",
    "Grant",
    "ProviderRequest",
    "TokenResponseError",
    "TokenSet",
    "account_from_userinfo",
    "build_revocation_request",
    "build_token_request",
    "build_userinfo_request",
    "parse_token_response",
]

_DESCRIPTION_LIMIT = 200
# Granted scopes come back space- or comma-separated depending on the provider (GitHub: commas).
_SCOPE_SPLIT = re.compile(r"[\s,]+")
# Response fields copied into TokenSet.extra (non-secret metadata such as Salesforce's instance_url).
_SECRET_HINTS = ("token", "secret", "code", "password", "key")


class TokenResponseError(Exception):
    """The provider refused (e.g. `invalid_grant`) or answered with something unusable.

    `error` is the OAuth error code; the message never contains token material.
    """

    def __init__(self, error: str, description: str | None = None, *, provider: str | None = None) -> None:
        self.error = error
        self.description = description[:_DESCRIPTION_LIMIT] if description else None
        self.provider = provider
        where = f"{provider}: " if provider else ""
        detail = f" ({self.description})" if self.description else ""
        super().__init__(f"{where}token endpoint returned {error}{detail}")

    @property
    def is_invalid_grant(self) -> bool:
        """True when the grant is dead (revoked, expired or reused) and the user must re-authorize."""
        return self.error in ("invalid_grant", "token_revoked", "invalid_refresh_token", "token_expired")


class ExternalAccount(BaseModel):
    """Who granted, as the provider names them."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str | None = None


class TokenSet(BaseModel):
    """The token material and metadata of one grant after a code exchange or a refresh."""

    model_config = ConfigDict(frozen=True)

    access_token: SecretStr
    refresh_token: SecretStr | None = None
    id_token: SecretStr | None = None
    token_type: str = "bearer"
    expires_at: datetime | None = None
    refresh_token_expires_at: datetime | None = None
    scopes: tuple[str, ...] = ()
    account: ExternalAccount | None = None
    refresh_token_rotated: bool = False
    extra: dict[str, str] = {}


def _lookup(data: Mapping[str, Any], path: str) -> Any:
    current: Any = data
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return None
        current = current[part]
    return current


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)


def _seconds(value: Any, field: str, provider: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(float(value))
    except (TypeError, ValueError):
        raise TokenResponseError("invalid_response", f"{field} is not a number", provider=provider) from None


def _raise_for_error(definition: ProviderDefinition, body: Mapping[str, Any]) -> None:
    error = body.get("error")
    # Slack answers HTTP 200 with ok=false; everyone else uses the RFC 6749 `error` member.
    if error or body.get("ok") is False:
        code = error if isinstance(error, str) and error else "invalid_response"
        description = body.get("error_description")
        raise TokenResponseError(
            code, description if isinstance(description, str) else None, provider=definition.id
        )


def _token_container(definition: ProviderDefinition, body: Mapping[str, Any]) -> Mapping[str, Any]:
    location = oauth_spec(definition).token_location
    if location:
        nested = _lookup(body, location)
        # Slack refresh responses carry the refreshed user token at the top level.
        if isinstance(nested, Mapping) and nested.get("access_token"):
            return nested
    return body


def _parse_scopes(container: Mapping[str, Any], body: Mapping[str, Any]) -> tuple[str, ...] | None:
    for value in (container.get("scope"), container.get("scopes"), body.get("scopes")):
        if isinstance(value, str):
            return tuple(part for part in _SCOPE_SPLIT.split(value) if part)
        if isinstance(value, list):
            return tuple(str(part) for part in value)
    return None


# An account id or name longer than this is not an identifier but data (a whole document, a token).
ACCOUNT_TEXT_MAX = 256


def _account_at(body: Mapping[str, Any], id_path: str, name_path: str | None) -> ExternalAccount | None:
    secrets = _secret_values(body)
    account_id = _account_text(_lookup(body, id_path), secrets)
    if not account_id:
        return None
    name = _account_text(_lookup(body, name_path), secrets) if name_path else None
    return ExternalAccount(id=account_id, name=name)


def _account_text(value: Any, secrets: set[str]) -> str | None:
    """A scalar that can be shown as an account: short, one line, and not a secret of the response."""
    text = _as_text(value)
    if text is None or len(text) > ACCOUNT_TEXT_MAX or "\n" in text or text in secrets:
        return None
    return text


def _secret_values(body: Any) -> set[str]:
    """Every string the response holds under a key that names a secret (at any depth)."""
    found: set[str] = set()
    if isinstance(body, Mapping):
        for key, value in body.items():
            if isinstance(value, str) and any(hint in str(key).lower() for hint in _SECRET_HINTS):
                found.add(value)
            elif isinstance(value, (Mapping, list)):
                found |= _secret_values(value)
    elif isinstance(body, list):
        for item in body:
            found |= _secret_values(item)
    return found


def _extra_metadata(container: Mapping[str, Any]) -> dict[str, str]:
    extra = {}
    for key, value in container.items():
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            lowered = key.lower()
            if not any(hint in lowered for hint in _SECRET_HINTS) and key not in ("expires_in", "scope"):
                extra[key] = str(value)
    return extra


def parse_token_response(
    definition: ProviderDefinition,
    body: Mapping[str, Any],
    *,
    now: datetime,
    previous: TokenSet | None = None,
    requested_scopes: Sequence[str] | None = None,
) -> TokenSet:
    """Read a token endpoint's JSON body; pass `previous` when it answers a refresh."""
    if not isinstance(body, Mapping):
        raise TokenResponseError("invalid_response", "body is not a JSON object", provider=definition.id)
    _raise_for_error(definition, body)
    container = _token_container(definition, body)
    access_token = container.get("access_token")
    if not isinstance(access_token, str) or not access_token:
        where = oauth_spec(definition).token_location or "the top level"
        raise TokenResponseError("invalid_response", f"no access_token at {where}", provider=definition.id)
    policy = definition.refresh

    new_refresh = container.get("refresh_token")
    refresh_token: SecretStr | None = (
        SecretStr(new_refresh) if isinstance(new_refresh, str) and new_refresh else None
    )
    rotated = False
    refresh_expires_at: datetime | None = None
    if refresh_token is not None:
        rotated = (
            previous is not None
            and previous.refresh_token is not None
            and (previous.refresh_token.get_secret_value() != refresh_token.get_secret_value())
        )
        refresh_lifetime = _seconds(
            container.get("refresh_token_expires_in", container.get("refresh_expires_in")),
            "refresh_token_expires_in",
            definition.id,
        )
        refresh_lifetime = refresh_lifetime or policy.refresh_token_lifetime
        refresh_expires_at = now + timedelta(seconds=refresh_lifetime) if refresh_lifetime else None
    elif previous is not None and policy.keep_refresh_token_when_omitted:
        # Google (and Spotify, Figma) omit refresh_token on refresh: the old one stays valid.
        refresh_token = previous.refresh_token
        refresh_expires_at = previous.refresh_token_expires_at

    expires_at: datetime | None = None
    if not policy.non_expiring:
        lifetime = _seconds(container.get("expires_in"), "expires_in", definition.id)
        lifetime = lifetime if lifetime is not None else policy.default_expires_in
        expires_at = now + timedelta(seconds=lifetime) if lifetime is not None else None

    scopes = _parse_scopes(container, body)
    if scopes is None:
        scopes = previous.scopes if previous is not None else tuple(requested_scopes or ())

    account = previous.account if previous is not None else None
    identity = definition.account
    if identity is not None and identity.source == "token_response":
        account = _account_at(body, identity.id_path, identity.name_path) or account

    id_token = container.get("id_token") or body.get("id_token")
    token_type = container.get("token_type")
    return TokenSet(
        access_token=SecretStr(access_token),
        refresh_token=refresh_token,
        id_token=SecretStr(id_token) if isinstance(id_token, str) and id_token else None,
        token_type=token_type if isinstance(token_type, str) and token_type else "bearer",
        expires_at=expires_at,
        refresh_token_expires_at=refresh_expires_at,
        scopes=scopes,
        account=account,
        refresh_token_rotated=rotated,
        extra=_extra_metadata(body),
    )


def account_from_userinfo(definition: ProviderDefinition, body: Mapping[str, Any]) -> ExternalAccount | None:
    """The external account from a userinfo response, per the definition's account paths."""
    identity = definition.account
    if identity is None or identity.source != "userinfo" or not isinstance(body, Mapping):
        return None
    return _account_at(body, identity.id_path, identity.name_path)
