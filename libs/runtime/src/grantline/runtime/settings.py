"""Settings shared by every service; each service derives its own class from ``ServiceSettings``.

Every value comes from the environment with the ``GRANTLINE_`` prefix (``GRANTLINE_NATS_URL``, ...),
so a Kubernetes Deployment configures a service with plain environment variables and Secrets.
"""

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class MissingProductionSetting(ValueError):
    """A service refuses to start in production without a setting it cannot safely make up."""


class KeySetError(ValueError):
    """A run-grant key set that cannot be used; the message names the setting, never a key."""

    # Defined here, not in run_grants.py, so that `grantline run` can catch it without loading PyJWT
    # and cryptography (about 6 MB) into services that never sign or verify a grant.


class ServiceSettings(BaseSettings):
    """The settings every Grantline service reads."""

    model_config = SettingsConfigDict(env_prefix="GRANTLINE_", extra="ignore", frozen=True)

    service_name: str = "grantline"
    environment: Literal["development", "test", "production"] = "production"

    nats_url: str = "nats://127.0.0.1:4222"
    # Credentials for this service's NATS user (DESIGN section 5: one user per service).
    nats_user: str | None = None
    nats_password: SecretStr | None = None
    nats_credentials_file: Path | None = None
    # TLS to NATS (grantline.runtime.nats.tls, docs/nats-security.md): the CA bundle that signed the
    # servers' certificates (a tls:// URL without one trusts the system CAs), this service's client
    # certificate and key when NATS requires mutual TLS, and the name to expect in the server's
    # certificate when it is not the URL's host.
    nats_tls_ca_file: Path | None = None
    nats_tls_cert_file: Path | None = None
    nats_tls_key_file: Path | None = None
    nats_tls_server_name: str | None = None
    # TLS before any NATS protocol byte, so a man in the middle cannot strip the server's TLS request;
    # needs `handshake_first` on the server (every nats-server Grantline ships configures it).
    nats_tls_handshake_first: bool = True
    # Production refuses a NATS connection without TLS unless this is set (a deliberate opt-out).
    nats_allow_plaintext: bool = False

    database_url: str = "postgresql://postgres@127.0.0.1:5432/grantline"
    database_pool_size: int = Field(default=10, ge=1, le=200)
    # Connections of the small psycopg pool the hot loops use (grantline.runtime.db.driver), on top of
    # the pool above; opened only by services that use it.
    database_driver_pool_size: int = Field(default=4, ge=1, le=100)

    http_host: str = "127.0.0.1"
    http_port: int = Field(default=8080, ge=0, le=65535)

    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"

    # OpenTelemetry: traces go to an OTLP/HTTP endpoint when one is set.
    otel_exporter_endpoint: str | None = None
    otel_console: bool = False

    # Development only: allow provider URLs on loopback/private addresses (the sandbox provider).
    allow_private_provider_urls: bool = False
    sandbox_url: str | None = None
    # Extra provider definition directories (YAML), layered over the built-in catalogue.
    provider_dirs: list[Path] = []
    # JetStream replicas of new streams, read by `grantline migrate` (3 on a cluster; docs/deployment.md).
    nats_stream_replicas: int = Field(default=1, ge=1, le=5)
    # Prefix of this connection's reply inboxes. With per-service NATS users each user may subscribe only
    # to its own prefix (deploy/nats/permissions.yaml), so no one can read another's replies (tokens).
    nats_inbox_prefix: str | None = None
