"""A private CA and the certificates of a local NATS: for ``grantline dev --tls`` and the tests.

Production certificates come from cert-manager or your PKI (docs/nats-security.md); these are for one
machine: a CA made on the spot, a server certificate for 127.0.0.1/localhost, and optionally a client
certificate for mutual TLS. Keys are ECDSA P-256; every file is written 0600 (the CA's key never
leaves the directory, and nothing else on the machine needs to read the client key).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LOCAL_HOSTS = ("127.0.0.1", "::1", "localhost")
# Long enough for a development data directory to outlive a few months of use; renewed when close.
VALIDITY = datetime.timedelta(days=365)
RENEW_BEFORE = datetime.timedelta(days=7)
CLIENT_NAME = "grantline-client"


@dataclass(frozen=True)
class TlsFiles:
    """Where the PEM files of a local NATS's TLS live."""

    directory: Path
    ca_file: Path
    ca_key_file: Path
    server_cert_file: Path
    server_key_file: Path
    client_cert_file: Path
    client_key_file: Path

    @classmethod
    def under(cls, directory: Path) -> TlsFiles:
        """The file names in ``directory``."""
        names = ("ca", "ca-key", "server", "server-key", "client", "client-key")
        return cls(Path(directory), *(Path(directory) / f"{name}.pem" for name in names))

    def has_client_certificate(self) -> bool:
        """True when a client certificate (for mutual TLS) is there."""
        return self.client_cert_file.is_file() and self.client_key_file.is_file()


def ensure_local_certificates(
    directory: Path, *, client: bool = False, hosts: Sequence[str] = LOCAL_HOSTS
) -> TlsFiles:
    """The CA and certificates under ``directory``: kept when still valid, else (re)generated."""
    files = TlsFiles.under(directory)
    files.directory.mkdir(parents=True, exist_ok=True)
    os.chmod(files.directory, 0o700)
    if not _still_valid(files.ca_file) or not _still_valid(files.server_cert_file):
        ca_key, ca_cert = _new_ca()
        _write_key(files.ca_key_file, ca_key)
        _write_certificate(files.ca_file, ca_cert)
        server_key, server_cert = _new_leaf(ca_key, ca_cert, "grantline-nats", hosts, server=True)
        _write_key(files.server_key_file, server_key)
        _write_certificate(files.server_cert_file, server_cert)
        files.client_cert_file.unlink(missing_ok=True)  # signed by the CA just replaced
    if client and not (files.has_client_certificate() and _still_valid(files.client_cert_file)):
        ca_key = _read_key(files.ca_key_file)
        ca_cert = x509.load_pem_x509_certificate(files.ca_file.read_bytes())
        client_key, client_cert = _new_leaf(ca_key, ca_cert, CLIENT_NAME, (), server=False)
        _write_key(files.client_key_file, client_key)
        _write_certificate(files.client_cert_file, client_cert)
    return files


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _still_valid(path: Path) -> bool:
    try:
        certificate = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError):
        return False
    return certificate.not_valid_after_utc - RENEW_BEFORE > _now()


def _new_ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Grantline local NATS CA")])
    certificate = (
        _base(name, name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def _new_leaf(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    common_name: str,
    hosts: Sequence[str],
    *,
    server: bool,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        _base(subject, ca_cert.subject, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName(_names(hosts)), critical=False)
    return key, builder.sign(ca_key, hashes.SHA256())


def _base(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = _now()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # tolerate a little clock skew
        .not_valid_after(now + VALIDITY)
    )


def _names(hosts: Sequence[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _write_private(path: Path, data: bytes) -> None:
    # Created 0600 from the start (no window in which another user could read a key).
    path.unlink(missing_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    _write_private(
        path,
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )


def _write_certificate(path: Path, certificate: x509.Certificate) -> None:
    _write_private(path, certificate.public_bytes(serialization.Encoding.PEM))


def _read_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{path} is not an EC private key")
    return key
