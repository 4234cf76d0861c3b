"""`grantline dev --mutual-tls`: the embedded NATS speaks only TLS with the generated CA, refuses a client
without a certificate, and the files a runner needs (dev.json's `nats_tls`) let it in.

The whole stack over TLS is the end-to-end walk (`GRANTLINE_TEST_E2E_NATS_TLS=mutual ./bin/test tests/e2e`);
this starts only the stack's NATS, so it stays fast.
"""

from __future__ import annotations

import ssl
import stat
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from grantline.cli.dev_stack import DevStack
from grantline.runtime.nats.tls import client_ssl_context


@pytest.fixture
def dev_nats(tmp_path: Path) -> Iterator[DevStack]:
    # A database URL from outside keeps `grantline dev` from starting Postgres: only NATS is needed here.
    stack = DevStack(
        tmp_path / "grantline", 0, {"GRANTLINE_DATABASE_URL": "postgresql://unused/x"}, nats_tls="mutual"
    )
    stack.data_dir.mkdir(parents=True)
    stack.start_infrastructure()
    try:
        yield stack
    finally:
        stack.stop()


async def test_dev_mutual_tls_admits_only_clients_with_the_generated_certificates(
    dev_nats: DevStack,
) -> None:
    tls = dev_nats.nats_tls_info()["nats_tls"]
    assert isinstance(tls, dict) and set(tls) == {"ca_file", "cert_file", "key_file"}
    for path in Path(tls["ca_file"]).parent.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert set(dev_nats.nats_tls_environment()) == {
        "GRANTLINE_NATS_TLS_CA_FILE",
        "GRANTLINE_NATS_TLS_CERT_FILE",
        "GRANTLINE_NATS_TLS_KEY_FILE",
    }
    (server,) = dev_nats.stoppers
    url = server.url  # type: ignore[attr-defined]
    assert url.startswith("tls://127.0.0.1:")
    # Any static user shows the transport (runners are auth-callout identities that need runner-auth).
    audit = dev_nats.environment_of("audit")
    credentials = {
        "user": audit["GRANTLINE_NATS_USER"],
        "password": audit["GRANTLINE_NATS_PASSWORD"],
        "inbox_prefix": audit["GRANTLINE_NATS_INBOX_PREFIX"],
        "allow_reconnect": False,
        "connect_timeout": 5,
    }

    context = client_ssl_context(Path(tls["ca_file"]), Path(tls["cert_file"]), Path(tls["key_file"]))
    nc = await nats.connect(url, tls=context, tls_handshake_first=True, **credentials)
    try:
        await nc.flush()
        assert nc.is_connected
    finally:
        await nc.close()

    without_certificate = client_ssl_context(Path(tls["ca_file"]))
    with pytest.raises(ssl.SSLError, match="CERTIFICATE_REQUIRED"):
        await nats.connect(url, tls=without_certificate, tls_handshake_first=True, **credentials)
    with pytest.raises(ssl.SSLError):  # a client that does not speak TLS at all
        await nats.connect(url.replace("tls://", "nats://"), **credentials)
