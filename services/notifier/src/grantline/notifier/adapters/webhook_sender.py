"""POST one signed delivery to a tenant's endpoint (aiohttp, Standard Webhooks signatures).

Only public addresses are connected to outside development (``PublicAddressResolver``, checked when
connecting), redirects are not followed (a 3xx is a failed attempt: it could point inside), and the
receiver's answer is read no further than its status.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import aiohttp
from pydantic import SecretStr
from standardwebhooks.webhooks import Webhook

from grantline.runtime.public_addresses import NonPublicAddress, PublicAddressResolver


@dataclass(frozen=True)
class AttemptOutcome:
    """What one POST gave: success is any 2xx; ``error`` says why not, never with the body sent."""

    succeeded: bool
    status_code: int | None
    error: str | None


def signed_headers(secret: SecretStr, delivery_id: str, sent_at: datetime, body: bytes) -> dict[str, str]:
    """The Standard Webhooks headers of a delivery (``webhook-signature: v1,<base64 HMAC-SHA256>``)."""
    signature = Webhook(secret.get_secret_value()).sign(delivery_id, sent_at, body.decode())
    return {
        "content-type": "application/json",
        "webhook-id": delivery_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signature,
        "user-agent": "Grantline-Notifier/1",
    }


class WebhookSender:
    """Keep-alive HTTP to endpoints, opened in the running loop."""

    def __init__(self, *, timeout_seconds: float, allow_private: bool) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._allow_private = allow_private
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            resolver = None if self._allow_private else PublicAddressResolver("endpoint host")
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=64, resolver=resolver), timeout=self._timeout
            )
        return self._session

    async def post(self, url: str, headers: dict[str, str], body: bytes) -> AttemptOutcome:
        """One attempt."""
        try:
            async with self._open().post(url, data=body, headers=headers, allow_redirects=False) as response:
                ok = 200 <= response.status < 300
                return AttemptOutcome(ok, response.status, None if ok else f"HTTP {response.status}")
        except aiohttp.ClientConnectorDNSError as error:
            if isinstance(error.os_error, NonPublicAddress):
                return AttemptOutcome(False, None, str(error.os_error))
            return AttemptOutcome(False, None, "the endpoint host does not resolve")
        except (aiohttp.ClientError, TimeoutError) as error:
            return AttemptOutcome(False, None, type(error).__name__)

    async def aclose(self) -> None:
        """Close the connections."""
        if self._session is not None:
            await self._session.close()
            self._session = None
