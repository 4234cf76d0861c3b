"""The proxy's HTTP client to providers: one pooled aiohttp session per replica.

Redirects are not followed here (the service follows them only to the provider's own hosts) and
bodies are not decompressed (they pass through as the provider encoded them, with their
Content-Encoding). Provider cookies are never kept (a dummy jar).
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Mapping

import aiohttp
from yarl import URL


class UpstreamUnavailable(Exception):
    """The provider could not be reached, or did not answer in time."""


class UpstreamClient:
    """Sends one request and hands back the response unread, for streaming."""

    def __init__(self, *, connections: int) -> None:
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections, ttl_dns_cache=60),
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
            )
        return self._session

    async def send(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str],
        body: bytes | AsyncIterable[bytes] | None,
        *,
        timeout: float,
    ) -> aiohttp.ClientResponse:
        """The provider's response, headers read and body not yet; the caller must release it."""
        try:
            return await self._client().request(
                method,
                URL(url, encoded=True),
                headers=headers,
                data=body,
                allow_redirects=False,
                # The whole call may stream for long (SSE); what is bounded is the wait for each read.
                timeout=aiohttp.ClientTimeout(total=None, connect=timeout, sock_read=timeout),
            )
        except (aiohttp.ClientError, TimeoutError) as error:
            raise UpstreamUnavailable(type(error).__name__) from None

    async def aclose(self) -> None:
        """Close the pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None
