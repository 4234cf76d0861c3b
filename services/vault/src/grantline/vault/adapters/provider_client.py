"""Every call the vault makes to a provider's token, refresh, revocation and userinfo endpoints.

Requests are shaped by `grantline.providers` (quirks live in the catalogue); this module sends them
through a ``ProviderTransport`` (aiohttp, see provider_http.py), with timeouts and bounded
retries. A request that may already have been processed by the provider (a refresh of a rotating
token, a code exchange) is only re-sent when it certainly never left this process (no connection
could be made) or the provider said it did not process it (5xx, 429): re-sending a refresh whose
reply was lost would burn a rotated refresh token.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode

from pydantic import SecretStr

from grantline.providers.definition import ProviderDefinition
from grantline.providers.setting_discovery import discovered_value, pending_discoveries
from grantline.providers.token_response import (
    ExternalAccount,
    ProviderRequest,
    TokenResponseError,
    TokenSet,
    account_from_userinfo,
    build_revocation_request,
    build_token_request,
    build_userinfo_request,
    parse_token_response,
)
from grantline.vault.adapters.provider_http import (
    ProviderResponse,
    ProviderTransport,
    ProviderTransportError,
    transport_for,
)
from grantline.vault.adapters.token_check import check_request
from grantline.vault.adapters.url_guard import UnsafeProviderUrl, check_provider_url
from grantline.vault.settings import VaultSettings

log = logging.getLogger(__name__)

_RETRY_STATUSES = frozenset({500, 502, 503, 504})


class ProviderUnavailable(Exception):
    """The provider could not be reached or kept failing; nothing it said was conclusive."""


@dataclass(frozen=True)
class ClientCredentials:
    """A provider app's OAuth client, with the secret decrypted for the duration of one call."""

    client_id: str
    client_secret: SecretStr
    settings: Mapping[str, str]


class ProviderClient:
    """Sends provider requests with retries, URL checks and quirk-aware parsing."""

    def __init__(self, settings: VaultSettings, transport: ProviderTransport | None = None) -> None:
        self._settings = settings
        self._transport = transport or transport_for(settings)

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._transport.aclose()

    async def exchange_code(
        self,
        definition: ProviderDefinition,
        client: ClientCredentials,
        *,
        code: str,
        redirect_uri: str,
        code_verifier: str | None,
        requested_scopes: Sequence[str],
    ) -> TokenSet:
        """Exchange an authorization code; raises TokenResponseError or ProviderUnavailable."""
        request = build_token_request(
            definition,
            "authorization_code",
            client_id=client.client_id,
            client_secret=client.client_secret,
            code=code,
            redirect_uri=redirect_uri,
            code_verifier=code_verifier,
            settings=client.settings,
        )
        body = await self._token_call(definition, request, resend_safe=False)
        tokens = parse_token_response(
            definition, body, now=datetime.now(UTC), requested_scopes=requested_scopes
        )
        if tokens.account is None:
            account = await self.userinfo_account(definition, tokens.access_token, client.settings)
            if account is not None:
                tokens = tokens.model_copy(update={"account": account})
        return tokens

    async def refresh(
        self, definition: ProviderDefinition, client: ClientCredentials, previous: TokenSet
    ) -> TokenSet:
        """Refresh with `previous.refresh_token`; raises TokenResponseError or ProviderUnavailable."""
        assert previous.refresh_token is not None
        request = build_token_request(
            definition,
            "refresh_token",
            client_id=client.client_id,
            client_secret=client.client_secret,
            refresh_token=previous.refresh_token,
            settings=client.settings,
        )
        body = await self._token_call(definition, request, resend_safe=not definition.refresh.rotating)
        return parse_token_response(definition, body, now=datetime.now(UTC), previous=previous)

    async def revoke(
        self,
        definition: ProviderDefinition,
        client: ClientCredentials,
        *,
        token: SecretStr,
        token_type_hint: Any,
    ) -> bool:
        """Tell the provider a token is gone (RFC 7009); False when it has no endpoint or refused.

        Raises ProviderUnavailable when the provider could not answer (5xx, 429, unreachable): the
        call is worth making again.
        """
        request = build_revocation_request(
            definition,
            token=token,
            token_type_hint=token_type_hint,
            client_id=client.client_id,
            client_secret=client.client_secret,
            settings=client.settings,
        )
        if request is None:
            return False
        response = await self._send(request, resend_safe=True)
        if response.status_code >= 500 or response.status_code == 429:
            raise ProviderUnavailable(f"revocation endpoint answered {response.status_code}")
        if response.status_code >= 400:
            log.warning(
                "provider refused revocation",
                extra={"provider": definition.id, "status": response.status_code},
            )
            return False
        return True

    async def userinfo_account(
        self, definition: ProviderDefinition, access_token: SecretStr, settings: Mapping[str, str]
    ) -> ExternalAccount | None:
        """Who granted, from the userinfo endpoint when the definition reads the account there."""
        if definition.account is None or definition.account.source != "userinfo":
            return None
        request = build_userinfo_request(definition, access_token, settings=settings)
        if request is None:
            return None
        response = await self._send(request, resend_safe=True)
        if response.status_code != 200:
            log.warning("userinfo failed", extra={"provider": definition.id, "status": response.status_code})
            return None
        try:
            return account_from_userinfo(definition, json.loads(response.body))
        except ValueError:
            return None

    async def discover_settings(
        self, definition: ProviderDefinition, access_token: SecretStr, settings: Mapping[str, str]
    ) -> dict[str, str]:
        """`settings` plus those the definition reads after the grant (Atlassian's cloud id).

        Raises SettingsError when the provider names none that fits, ProviderUnavailable.
        """
        found = dict(settings)
        for discovery in pending_discoveries(definition, settings):
            request = ProviderRequest(
                url=discovery.url,
                headers={
                    "Accept": "application/json",
                    "Authorization": f"Bearer {access_token.get_secret_value()}",
                },
                body=None,
                method="GET",
            )
            response = await self._send(request, resend_safe=True)
            if response.status_code != 200:
                raise ProviderUnavailable(
                    f"{definition.id}: {discovery.setting} lookup answered {response.status_code}"
                )
            try:
                document = json.loads(response.body)
            except ValueError:
                raise ProviderUnavailable(
                    f"{definition.id}: {discovery.setting} lookup did not answer JSON"
                ) from None
            found[discovery.setting] = discovered_value(definition, discovery, document, found)
        return found

    async def token_alive(
        self, definition: ProviderDefinition, access_token: SecretStr, settings: Mapping[str, str]
    ) -> bool | None:
        """Whether the provider still accepts the token: a GET of the catalogue's `api.check_path`,
        else of the userinfo endpoint. False on 401; None when the definition offers neither or the
        provider could not say (any other answer than 2xx or 401)."""
        request = check_request(definition, access_token, settings)
        if request is None:
            return None
        response = await self._send(request, resend_safe=True)
        if response.status_code == 401:
            return False
        return True if 200 <= response.status_code < 300 else None

    async def api_key_accepted(self, url: str, method: str, headers: Mapping[str, str]) -> bool | None:
        """Make an API-key check call: True when accepted (2xx), False when refused (401/403), None when
        the provider could not tell (another status). Raises ProviderUnavailable when unreachable."""
        request = ProviderRequest(url=url, headers=dict(headers), body=None, method=method)  # type: ignore[arg-type]
        response = await self._send(request, resend_safe=True)
        if 200 <= response.status_code < 300:
            return True
        if response.status_code in (401, 403):
            return False
        log.warning("API key check inconclusive", extra={"status": response.status_code})
        return None

    async def fetch_json(self, url: str) -> Any:
        """A JSON document from a provider (signing keys); raises ProviderUnavailable if it is not one."""
        request = ProviderRequest(url=url, headers={"Accept": "application/json"}, body=None, method="GET")
        response = await self._send(request, resend_safe=True)
        if response.status_code != 200:
            raise ProviderUnavailable(f"{url} answered {response.status_code}")
        try:
            return json.loads(response.body)
        except ValueError:
            raise ProviderUnavailable(f"{url} did not answer JSON") from None

    async def discovery_call(
        self,
        method: Literal["GET", "POST"],
        url: str,
        *,
        headers: Mapping[str, str],
        json_body: Mapping[str, Any] | None = None,
        resend_safe: bool = True,
    ) -> ProviderResponse:
        """One request of MCP discovery or client registration, guarded like every provider call.

        The URL is checked (public https only outside development), no redirect is followed, and the
        reply is size- and time-limited by the transport. Raises ProviderUnavailable.
        """
        request = ProviderRequest(
            url=url,
            headers=dict(headers),
            body=dict(json_body) if json_body is not None else None,
            body_format="json",
            method=method,
        )
        return await self._send(request, resend_safe=resend_safe)

    async def _token_call(
        self, definition: ProviderDefinition, request: ProviderRequest, *, resend_safe: bool
    ) -> Mapping[str, Any]:
        response = await self._send(request, resend_safe=resend_safe)
        body = _decode_body(response)
        if body is None:
            if response.status_code >= 500:
                raise ProviderUnavailable(f"{definition.id}: token endpoint answered {response.status_code}")
            raise TokenResponseError(
                "invalid_response", f"HTTP {response.status_code}, unreadable body", provider=definition.id
            )
        if response.status_code >= 400 and not body.get("error"):
            raise TokenResponseError(
                "invalid_response", f"HTTP {response.status_code}", provider=definition.id
            )
        return body

    async def _send(self, request: ProviderRequest, *, resend_safe: bool) -> ProviderResponse:
        settings = self._settings
        try:
            check_provider_url(request.url, allow_private=settings.allow_private_provider_urls)
        except UnsafeProviderUrl as error:
            raise ProviderUnavailable(str(error)) from None
        body = _encode_body(request)
        attempts = settings.provider_max_attempts
        for attempt in range(1, attempts + 1):
            last = attempt == attempts
            try:
                response = await self._transport.send(
                    request.method, request.url, headers=request.headers, body=body
                )
            except UnsafeProviderUrl as error:
                raise ProviderUnavailable(str(error)) from None
            except ProviderTransportError as error:
                retryable = resend_safe or error.certainly_not_sent
                if last or not retryable:
                    raise ProviderUnavailable(f"provider unreachable: {error}") from None
                await asyncio.sleep(self._backoff(attempt))
                continue
            if response.status_code == 429:
                wait = _retry_after(response)
                if last or wait is None or wait > settings.provider_max_retry_after_seconds:
                    raise ProviderUnavailable("provider is rate limiting (429)")
                await asyncio.sleep(wait + random.uniform(0, 0.1))
                continue
            if response.status_code in _RETRY_STATUSES and not last:
                await asyncio.sleep(self._backoff(attempt))
                continue
            return response
        raise ProviderUnavailable("provider kept failing")  # pragma: no cover - loop always returns

    def _backoff(self, attempt: int) -> float:
        # Full jitter: replicas retrying the same provider do not synchronise.
        return random.uniform(0, self._settings.provider_retry_base_seconds * 2 ** (attempt - 1))


def _encode_body(request: ProviderRequest) -> bytes | None:
    if request.body is None:
        return None
    if request.body_format == "json":
        return json.dumps(request.body).encode()
    return urlencode(request.body).encode()


def _decode_body(response: ProviderResponse) -> dict[str, Any] | None:
    text = response.text
    try:
        body = json.loads(text)
    except ValueError:
        # Form-encoded replies (GitHub when JSON is not accepted).
        if "=" in text and "{" not in text:
            return dict(parse_qsl(text))
        return None
    return body if isinstance(body, dict) else None


def _retry_after(response: ProviderResponse) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return 1.0
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
