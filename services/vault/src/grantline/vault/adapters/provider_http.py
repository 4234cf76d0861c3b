"""HTTP to providers: aiohttp under a small interface, with the SSRF check made where it counts.

Why aiohttp and not httpx: a refresh wave keeps dozens of token requests in flight, and httpcore's
connection pool rescans every connection for every queued request; measured on this project's
machine (uvloop, 64 concurrent keep-alive POSTs), httpx cost ~1.3 ms of client CPU per request and
aiohttp ~0.12 ms.

The interface (``ProviderTransport``) is what ``ProviderClient`` needs and nothing more: send one
request, get status, headers and body back, and know whether a failed request certainly never
reached the provider. Tests wrap it to send requests for real provider hosts to the sandbox.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import aiohttp

from grantline.runtime.public_addresses import NonPublicAddress, PublicAddressResolver
from grantline.vault.adapters.url_guard import UnsafeProviderUrl
from grantline.vault.settings import VaultSettings

# A token, revocation or userinfo reply is a few kilobytes; anything far larger is not one.
MAX_RESPONSE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class ProviderResponse:
    """A provider's answer, read in full."""

    status_code: int
    headers: Mapping[str, str]  # names in lower case
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class ProviderTransportError(Exception):
    """The exchange failed; ``certainly_not_sent`` when no byte of the request left this process."""

    def __init__(self, reason: str, *, certainly_not_sent: bool) -> None:
        super().__init__(reason)
        self.certainly_not_sent = certainly_not_sent


class ProviderTransport(Protocol):
    """Sends one HTTP request to a provider."""

    async def send(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None
    ) -> ProviderResponse:
        """Raises ProviderTransportError, or UnsafeProviderUrl for a host that is not public."""

    async def aclose(self) -> None:
        """Close kept-alive connections."""


class AiohttpTransport:
    """Keep-alive connections to providers (``max_connections`` in all), opened in the running loop."""

    def __init__(self, *, timeout_seconds: float, max_connections: int, allow_private: bool) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds, connect=timeout_seconds)
        self._max_connections = max_connections
        self._allow_private = allow_private
        self._session: aiohttp.ClientSession | None = None
        self._proxies = _EgressProxies()

    def _open(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            resolver=None if self._allow_private else PublicAddressResolver("provider host"),
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=self._timeout,
            # No cookies carried from one provider call (or tenant) to the next.
            cookie_jar=aiohttp.DummyCookieJar(),
            headers={"User-Agent": "grantline-vault"},
            # aiohttp's own trust_env re-reads the proxy variables and ~/.netrc (in a thread) for
            # every request: a third of the vault's refresh CPU. _EgressProxies reads them once.
            trust_env=False,
        )
        return self._session

    async def send(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None
    ) -> ProviderResponse:
        session = self._session or self._open()
        try:
            async with session.request(
                method,
                url,
                headers=dict(headers),
                data=body,
                allow_redirects=False,
                proxy=self._proxies.for_url(url),
            ) as response:
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.content.iter_any():
                    size += len(chunk)
                    if size > MAX_RESPONSE_BYTES:
                        raise ProviderTransportError("response too large", certainly_not_sent=False)
                    chunks.append(chunk)
                return ProviderResponse(
                    response.status,
                    {name.lower(): value for name, value in response.headers.items()},
                    b"".join(chunks),
                )
        except aiohttp.ClientConnectorDNSError as error:
            if isinstance(error.os_error, NonPublicAddress):
                raise UnsafeProviderUrl(str(error.os_error)) from None
            raise ProviderTransportError("provider host does not resolve", certainly_not_sent=True) from None
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as error:
            # No connection was made (refused, unreachable, TLS handshake failed, no free connection
            # in time): the request never left.
            raise ProviderTransportError(type(error).__name__, certainly_not_sent=True) from None
        except (aiohttp.ClientError, TimeoutError) as error:
            raise ProviderTransportError(type(error).__name__, certainly_not_sent=False) from None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class _EgressProxies:
    """HTTP_PROXY / HTTPS_PROXY / NO_PROXY as the process started with them, as egress is configured."""

    def __init__(self) -> None:
        self._proxies = {
            scheme: url
            for scheme, url in urllib.request.getproxies_environment().items()
            if scheme in ("http", "https")
        }
        self._bypassed: dict[str, bool] = {}

    def for_url(self, url: str) -> str | None:
        if not self._proxies:
            return None
        parts = urlsplit(url)
        proxy = self._proxies.get(parts.scheme)
        if proxy is None:
            return None
        host = parts.netloc
        bypassed = self._bypassed.get(host)
        if bypassed is None:
            if len(self._bypassed) > 10_000:
                self._bypassed.clear()
            bypassed = self._bypassed[host] = bool(urllib.request.proxy_bypass(host))
        return None if bypassed else proxy


def transport_for(settings: VaultSettings) -> AiohttpTransport:
    """The vault's transport from its settings."""
    return AiohttpTransport(
        timeout_seconds=settings.provider_timeout_seconds,
        max_connections=100,
        allow_private=settings.allow_private_provider_urls,
    )
