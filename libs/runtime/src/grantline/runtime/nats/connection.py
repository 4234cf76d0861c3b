"""Connecting to NATS: reconnect forever, one named connection per service, its own credentials, TLS."""

import logging
from typing import Any

import nats
from nats.aio.client import Client

from grantline.nats_fixes import install as install_nats_fixes
from grantline.runtime.nats.tls import refuse_plaintext_in_production, server_urls, tls_connect_options
from grantline.runtime.settings import ServiceSettings

log = logging.getLogger(__name__)


def connect_options(settings: ServiceSettings, *, name: str | None = None) -> dict[str, Any]:
    """Keyword arguments for ``nats.connect`` shared by every service's connections.

    Raises ``NatsTlsError`` when the TLS settings are unusable, or in production without TLS.
    """
    refuse_plaintext_in_production(settings)
    install_nats_fixes()  # before any connection: TLS handshake retries, a flush that covers the SUBs

    async def on_error(error: Exception) -> None:
        log.warning("nats error", extra={"error": type(error).__name__, "detail": str(error)})

    async def on_disconnected() -> None:
        log.warning("nats disconnected")

    async def on_reconnected() -> None:
        log.info("nats reconnected")

    options: dict[str, Any] = {
        "servers": server_urls(settings),
        "name": name or settings.service_name,
        # A service outlives any NATS restart: it never gives up reconnecting.
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.5,
        "connect_timeout": 2,
        "allow_reconnect": True,
        "error_cb": on_error,
        "disconnected_cb": on_disconnected,
        "reconnected_cb": on_reconnected,
        # Keep publishing into the client buffer while reconnecting rather than failing at once.
        "pending_size": 8 * 1024 * 1024,
    }
    if settings.nats_user:
        options["user"] = settings.nats_user
        options["password"] = settings.nats_password.get_secret_value() if settings.nats_password else ""
    if settings.nats_inbox_prefix:
        options["inbox_prefix"] = settings.nats_inbox_prefix
    if settings.nats_credentials_file:
        options["user_credentials"] = str(settings.nats_credentials_file)
    options.update(tls_connect_options(settings))
    return options


async def connect_nats(settings: ServiceSettings, *, name: str | None = None) -> Client:
    """The service's nats-py connection: its responders, consumers, outbox relay and requests."""
    options = connect_options(settings, name=name)
    # The first connection must succeed for start-up to make sense; afterwards reconnect forever.
    return await nats.connect(**options)
