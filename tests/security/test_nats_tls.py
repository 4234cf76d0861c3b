"""Attack 5 of issue 15: tokens crossing the network to NATS in clear text.

Services reach NATS over TLS and verify its certificate; a
certificate from another CA, a server that offers no TLS (a man in the middle stripping it) and, under
mutual TLS, a client without a certificate are all refused; production will not start in clear text
unless told to.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import urllib.request
from pathlib import Path
from typing import Any

import nats
import pytest
from fixtures.infra import TlsNats
from fixtures.start_up import run_role
from nats.aio.client import Client
from nats.aio.msg import Msg

from grantline.devstack.tls_certificates import ensure_local_certificates
from grantline.runtime.nats.connection import connect_nats, connect_options
from grantline.runtime.nats.tls import NatsTlsError
from grantline.runtime.settings import ServiceSettings


def _settings(**values: Any) -> ServiceSettings:
    return ServiceSettings(**{"environment": "production", **values})


async def _connect_once(settings: ServiceSettings) -> Client:
    """``connect_nats``'s options, but one attempt (a service retries a refused connection forever)."""
    return await nats.connect(**{**connect_options(settings), "allow_reconnect": False})


def _server_connections(server: TlsNats, name: str) -> list[dict[str, Any]]:
    """What the server itself reports about the connections called ``name`` (its /connz page)."""
    url = f"{server.server.monitor_url}/connz?limit=1024"
    with urllib.request.urlopen(url, timeout=5) as response:  # our own loopback monitor
        connections = json.load(response)["connections"] or []
    return [c for c in connections if c.get("name") == name]


@pytest.mark.parametrize("scheme", ["tls", "nats"])
async def test_a_service_reaches_nats_over_tls(tls_nats: TlsNats, scheme: str) -> None:
    """`tls://` URLs and `nats://` URLs with a CA both give TLS, as the server itself reports."""
    url = tls_nats.url.replace("tls://", f"{scheme}://")
    settings = _settings(**{**tls_nats.settings(), "nats_url": url}, service_name=f"tls-{scheme}")
    nc = await connect_nats(settings)
    received: asyncio.Queue[bytes] = asyncio.Queue()

    async def on_message(msg: Msg) -> None:
        await received.put(msg.data)

    try:
        await nc.subscribe("tls.check", cb=on_message)
        await nc.publish("tls.check", b"over tls")
        assert await asyncio.wait_for(received.get(), 5) == b"over tls"
        connections = _server_connections(tls_nats, f"tls-{scheme}")
        assert len(connections) == 1, connections
        assert connections[0].get("tls_version", "").startswith("1."), connections
    finally:
        await nc.close()


async def test_a_server_certificate_from_another_ca_is_refused(tls_nats: TlsNats, tmp_path: Path) -> None:
    other_ca = ensure_local_certificates(tmp_path / "other-ca").ca_file
    settings = _settings(**{**tls_nats.settings(), "nats_tls_ca_file": other_ca})
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        await _connect_once(settings)


async def test_a_client_configured_for_tls_refuses_a_server_without_tls(
    nats_url: str, tls_nats: TlsNats
) -> None:
    """A man in the middle that answers in plaintext (stripping TLS) gets no CONNECT: no password."""
    settings = _settings(nats_url=nats_url, nats_tls_ca_file=tls_nats.files.ca_file)
    with pytest.raises(ssl.SSLError):
        await _connect_once(settings)


async def test_a_server_name_override_verifies_against_that_name(tls_nats: TlsNats) -> None:
    """The certificate names 127.0.0.1 and localhost: another expected name is refused."""
    good = _settings(**tls_nats.settings(), nats_tls_server_name="localhost")
    nc = await connect_nats(good)
    await nc.close()
    wrong = _settings(**tls_nats.settings(), nats_tls_server_name="nats.example.com")
    with pytest.raises(ssl.SSLCertVerificationError, match=r"Hostname mismatch|doesn't match"):
        await _connect_once(wrong)


async def test_mutual_tls_refuses_a_client_without_a_certificate(mutual_tls_nats: TlsNats) -> None:
    with_cert = _settings(**mutual_tls_nats.settings(), service_name="mtls-with-cert")
    nc = await connect_nats(with_cert)
    try:
        assert nc.is_connected
    finally:
        await nc.close()
    without_cert = _settings(nats_url=mutual_tls_nats.url, nats_tls_ca_file=mutual_tls_nats.files.ca_file)
    with pytest.raises(ssl.SSLError, match="CERTIFICATE_REQUIRED"):
        await _connect_once(without_cert)


def test_production_refuses_plaintext_unless_allowed(tmp_path: Path) -> None:
    with pytest.raises(NatsTlsError, match="GRANTLINE_NATS_ALLOW_PLAINTEXT=true"):
        connect_options(_settings(nats_url="nats://nats:4222"))
    with pytest.raises(NatsTlsError):  # one plaintext server in the list is one too many
        connect_options(_settings(nats_url="tls://nats-0:4222,nats://nats-1:4222"))
    assert "tls" not in connect_options(_settings(nats_url="nats://nats:4222", nats_allow_plaintext=True))
    assert "tls" not in connect_options(_settings(nats_url="nats://nats:4222", environment="development"))
    # A tls:// URL alone verifies against the system's CAs; a CA makes a nats:// URL encrypted.
    assert isinstance(connect_options(_settings(nats_url="tls://nats:4222"))["tls"], ssl.SSLContext)
    ca_file = ensure_local_certificates(tmp_path).ca_file
    options = connect_options(_settings(nats_url="nats://nats:4222", nats_tls_ca_file=ca_file))
    assert isinstance(options["tls"], ssl.SSLContext) and options["tls_handshake_first"] is True


def test_unusable_tls_files_are_named_in_one_sentence(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(NatsTlsError, match=r"GRANTLINE_NATS_TLS_CA_FILE .*missing\.pem does not exist"):
        connect_options(_settings(nats_url="tls://nats:4222", nats_tls_ca_file=missing))
    not_pem = tmp_path / "not.pem"
    not_pem.write_text("hello")
    with pytest.raises(NatsTlsError, match="holds no PEM certificate"):
        connect_options(_settings(nats_url="tls://nats:4222", nats_tls_ca_file=not_pem))
    files = ensure_local_certificates(tmp_path / "tls", client=True)
    with pytest.raises(NatsTlsError, match="not a matching PEM certificate and private key"):
        connect_options(
            _settings(
                nats_url="tls://nats:4222",
                nats_tls_cert_file=files.client_cert_file,
                nats_tls_key_file=files.server_key_file,
            )
        )


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, "refusing to connect to NATS in clear text in production"),
        ({"GRANTLINE_NATS_TLS_CA_FILE": "/nonexistent/ca.pem"}, "/nonexistent/ca.pem does not exist"),
    ],
)
def test_a_service_fails_start_up_with_one_sentence(environment: dict[str, str], expected: str) -> None:
    result = run_role("refresher", {"GRANTLINE_NATS_URL": "nats://127.0.0.1:9", **environment})
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and expected in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
