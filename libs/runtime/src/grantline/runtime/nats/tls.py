"""TLS between a Grantline process and NATS: the client's SSL context and the plaintext guard.

`vault.resolve` replies carry tokens, so in production every connection to NATS is encrypted and
verifies the server's certificate. Settings (``GRANTLINE_NATS_TLS_*``): the CA bundle that signed the
servers' certificates (a ``tls://`` URL without one verifies against the system's CAs), optionally a
client certificate and key for mutual TLS, and a server name when the certificate names another host
than the URL. Every nats-py connection of a service gets its context from here.

The TLS handshake comes first, before NATS says anything (``tls_handshake_first``): nats-py otherwise
upgrades to TLS only when the server's plaintext INFO line asks for it, so a man in the middle who
strips that request would receive the service's password and every token in clear. Our nats-servers
run with ``handshake_first`` on (deploy/, the embedded server); turn it off only for a server that
cannot, accepting that risk.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

from grantline.runtime.settings import ServiceSettings


class NatsTlsError(ValueError):
    """The NATS transport settings are unusable or unsafe (the message is one sentence for operators)."""


def server_urls(settings: ServiceSettings) -> list[str]:
    """The NATS server URLs of ``GRANTLINE_NATS_URL`` (a comma-separated list)."""
    return [url.strip() for url in settings.nats_url.split(",") if url.strip()]


def uses_tls(settings: ServiceSettings) -> bool:
    """True when every connection to NATS will be encrypted: a CA is configured or all URLs are tls://."""
    if settings.nats_tls_ca_file is not None or settings.nats_tls_cert_file is not None:
        return True
    urls = server_urls(settings)
    return bool(urls) and all(url.lower().startswith("tls://") for url in urls)


def refuse_plaintext_in_production(settings: ServiceSettings) -> None:
    """Raise ``NatsTlsError`` when a production service would talk to NATS in clear text."""
    if settings.environment != "production" or settings.nats_allow_plaintext or uses_tls(settings):
        return
    raise NatsTlsError(
        "refusing to connect to NATS in clear text in production: use a tls:// URL or set "
        "GRANTLINE_NATS_TLS_CA_FILE (docs/nats-security.md), or set GRANTLINE_NATS_ALLOW_PLAINTEXT=true "
        "to accept that tokens cross the network unencrypted"
    )


def client_ssl_context(
    ca_file: Path | None = None, cert_file: Path | None = None, key_file: Path | None = None
) -> ssl.SSLContext:
    """A context that verifies the server against ``ca_file`` (else the system CAs), with a client cert."""
    if key_file is not None and cert_file is None:
        raise NatsTlsError("GRANTLINE_NATS_TLS_KEY_FILE is set without GRANTLINE_NATS_TLS_CERT_FILE")
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=_readable(ca_file, "CA_FILE"))
    except ssl.SSLError:
        raise NatsTlsError(f"GRANTLINE_NATS_TLS_CA_FILE {ca_file} holds no PEM certificate") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file is not None:
        try:
            context.load_cert_chain(str(_readable(cert_file, "CERT_FILE")), _readable(key_file, "KEY_FILE"))
        except ssl.SSLError:
            raise NatsTlsError(
                f"GRANTLINE_NATS_TLS_CERT_FILE {cert_file} and its key are not a matching PEM "
                "certificate and private key"
            ) from None
    return context


def tls_connect_options(settings: ServiceSettings) -> dict[str, Any]:
    """The TLS keyword arguments of ``nats.connect`` for these settings (empty when TLS is off)."""
    if not uses_tls(settings):
        return {}
    context = client_ssl_context(
        settings.nats_tls_ca_file, settings.nats_tls_cert_file, settings.nats_tls_key_file
    )
    options: dict[str, Any] = {"tls": context, "tls_handshake_first": settings.nats_tls_handshake_first}
    if settings.nats_tls_server_name:
        options["tls_hostname"] = settings.nats_tls_server_name
    return options


def _readable(path: Path | None, variable: str) -> str | None:
    # Checked here so a missing file is named in one sentence, not in an OpenSSL error string.
    if path is None:
        return None
    if not Path(path).is_file():
        raise NatsTlsError(f"GRANTLINE_NATS_TLS_{variable} {path} does not exist or is not a file")
    return str(path)
