"""Connecting to NATS: reconnect forever, one named connection per service, its own credentials, TLS."""

import logging
from typing import Any

import nats
from faststream.nats import NatsBroker, NatsUserPassword
from faststream.nats.security import NatsCredentials, NatsSecurity
from nats.aio.client import Client

from grantline.nats_tls_retry import install as retry_failed_tls_handshakes
from grantline.runtime.nats.tls import refuse_plaintext_in_production, server_urls, tls_connect_options
from grantline.runtime.settings import ServiceSettings

log = logging.getLogger(__name__)


def connect_options(settings: ServiceSettings, *, name: str | None = None) -> dict[str, Any]:
    """Keyword arguments for ``nats.connect`` and ``NatsBroker`` shared by every service.

    Raises ``NatsTlsError`` when the TLS settings are unusable, or in production without TLS.
    """
    refuse_plaintext_in_production(settings)
    retry_failed_tls_handshakes()  # before any connection, raw or FastStream's, can upgrade to TLS

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
    """A raw nats-py connection (for hot paths that skip FastStream's per-message cost)."""
    options = connect_options(settings, name=name)
    # The first connection must succeed for start-up to make sense; afterwards reconnect forever.
    return await nats.connect(**options)


def make_broker(settings: ServiceSettings) -> NatsBroker:
    """A FastStream broker for the service's subscribers, without FastStream's per-message log line."""
    options = connect_options(settings)
    options.pop("pending_size", None)
    security = _broker_security(options)
    if security is not None:
        options["security"] = security
    return NatsBroker(logger=None, graceful_timeout=10.0, **options)


def _broker_security(options: dict[str, Any]) -> NatsSecurity | None:
    # FastStream takes credentials and TLS only through `security` (NatsBroker rejects the raw kwargs);
    # move them there, with the same SSL context the raw connection uses.
    tls = {
        "ssl_context": options.pop("tls", None),
        "tls_hostname": options.pop("tls_hostname", None),
        "tls_handshake_first": options.pop("tls_handshake_first", False),
    }
    if "user" in options:
        return NatsUserPassword(options.pop("user"), options.pop("password"), **tls)
    if "user_credentials" in options:
        return NatsCredentials(options.pop("user_credentials"), **tls)
    if tls["ssl_context"] is not None:
        return NatsSecurity(**tls)
    return None
