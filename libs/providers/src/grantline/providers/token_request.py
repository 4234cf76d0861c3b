"""Builders for the HTTP requests the vault sends to a provider (token, refresh, revoke, userinfo).

They only describe requests; the vault sends them (with httpx). A ProviderRequest carries secrets in
its headers and body, so its repr hides both.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import SecretStr

from grantline.providers.authorize import oauth_spec, render_template, template_values
from grantline.providers.definition import BodyFormat, ProviderDefinition

Grant = Literal["authorization_code", "refresh_token"]
TokenTypeHint = Literal["access_token", "refresh_token"]


@dataclass(frozen=True)
class ProviderRequest:
    """One HTTP request to a provider; unpacks as (url, headers, body, body_format)."""

    url: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    body_format: BodyFormat = "form"
    method: Literal["GET", "POST", "DELETE"] = "POST"
    # Names of body fields that are secrets, for callers that record requests.
    secret_fields: frozenset[str] = field(default_factory=frozenset)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.url, self.headers, self.body, self.body_format))

    def __repr__(self) -> str:
        fields = sorted(self.body or {})
        return f"ProviderRequest({self.method} {self.url}, body fields={fields}, headers=<hidden>)"


def _secret(value: str | SecretStr) -> str:
    return value.get_secret_value() if isinstance(value, SecretStr) else value


def _basic_auth(client_id: str, client_secret: str) -> str:
    # Sent as-is rather than form-encoded first (RFC 6749 2.3.1): what Slack, Notion, Spotify and
    # friends actually decode, and client ids/secrets do not contain reserved characters in practice.
    raw = f"{client_id}:{client_secret}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def _content_type(body_format: BodyFormat) -> str:
    return "application/json" if body_format == "json" else "application/x-www-form-urlencoded"


def build_token_request(
    definition: ProviderDefinition,
    grant: Grant,
    *,
    client_id: str,
    client_secret: str | SecretStr,
    code: str | None = None,
    redirect_uri: str | None = None,
    code_verifier: str | None = None,
    refresh_token: str | SecretStr | None = None,
    settings: Mapping[str, str] | None = None,
) -> ProviderRequest:
    """The code-exchange or refresh request for a provider, shaped by its quirks."""
    oauth = oauth_spec(definition)
    values = template_values(definition, settings, client_id=client_id)
    body: dict[str, str] = {"grant_type": grant}
    secret_fields = {"client_secret"}
    if grant == "authorization_code":
        if not code or not redirect_uri:
            raise ValueError("authorization_code grant needs code and redirect_uri")
        body["code"] = code
        body["redirect_uri"] = redirect_uri
        secret_fields |= {"code", "code_verifier"}
        if code_verifier:
            body["code_verifier"] = code_verifier
        url_template = oauth.token_url
    else:
        if refresh_token is None:
            raise ValueError("refresh_token grant needs refresh_token")
        body["refresh_token"] = _secret(refresh_token)
        secret_fields.add("refresh_token")
        url_template = oauth.refresh_url or oauth.token_url
    for name, value in oauth.token_params.items():
        body.setdefault(name, render_template(value, values))
    headers = {"Accept": "application/json", "Content-Type": _content_type(oauth.token_body_format)}
    if oauth.client_auth == "header":
        headers["Authorization"] = _basic_auth(client_id, _secret(client_secret))
    else:
        body[oauth.client_id_param] = client_id
        if _secret(client_secret):  # a public client (MCP metadata-document client) has no secret to send
            body["client_secret"] = _secret(client_secret)
    return ProviderRequest(
        url=render_template(url_template, values),
        headers=headers,
        body=body,
        body_format=oauth.token_body_format,
        secret_fields=frozenset(secret_fields),
    )


def build_revocation_request(
    definition: ProviderDefinition,
    *,
    token: str | SecretStr,
    token_type_hint: TokenTypeHint | None,
    client_id: str,
    client_secret: str | SecretStr,
    settings: Mapping[str, str] | None = None,
) -> ProviderRequest | None:
    """The revocation request (RFC 7009 unless the provider differs), or None if it has no endpoint."""
    oauth = oauth_spec(definition)
    spec = oauth.revoke
    if spec is None:
        return None
    values = template_values(definition, settings, client_id=client_id)
    headers = {"Accept": "application/json"}
    body: dict[str, str] | None = {}
    token_value = _secret(token)
    if spec.client_auth == "bearer_token":
        # The token authenticates its own revocation (Slack auth.revoke, Dropbox token/revoke).
        headers["Authorization"] = f"Bearer {token_value}"
        body = None
    else:
        assert body is not None
        body[spec.token_param] = token_value
        if spec.send_token_type_hint and token_type_hint:
            body["token_type_hint"] = token_type_hint
        if spec.client_auth == "header":
            headers["Authorization"] = _basic_auth(client_id, _secret(client_secret))
        elif spec.client_auth == "body":
            body[oauth.client_id_param] = client_id
            if _secret(client_secret):
                body["client_secret"] = _secret(client_secret)
        headers["Content-Type"] = _content_type(spec.body_format)
    return ProviderRequest(
        url=render_template(spec.url, values),
        headers=headers,
        body=body,
        body_format=spec.body_format,
        method=spec.method,
        secret_fields=frozenset({spec.token_param, "client_secret"}),
    )


def build_userinfo_request(
    definition: ProviderDefinition,
    access_token: str | SecretStr,
    *,
    settings: Mapping[str, str] | None = None,
) -> ProviderRequest | None:
    """The request that reads who granted (None when the provider has no userinfo endpoint)."""
    oauth = oauth_spec(definition)
    if oauth.userinfo_url is None:
        return None
    values = template_values(definition, settings)
    headers = {"Accept": "application/json", "Authorization": f"Bearer {_secret(access_token)}"}
    return ProviderRequest(
        url=render_template(oauth.userinfo_url, values),
        headers=headers,
        body=None,
        method=oauth.userinfo_method,
    )
