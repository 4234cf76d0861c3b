"""Settings of the vault (environment variables with the ``GRANTLINE_`` prefix)."""

from pathlib import Path

from pydantic import Field, SecretStr

from grantline.runtime.settings import ServiceSettings
from grantline.vault.domain.data_key_versions import DEFAULT_MAX_ENCRYPTIONS


class VaultSettings(ServiceSettings):
    """Everything the vault reads from its environment."""

    service_name: str = "vault"
    http_port: int = 8081
    # Each of the two psycopg pools (transactions; single statements, the refreshes' among them),
    # opened as needed: the size of the SQLAlchemy pool they replace. SQLAlchemy's pool
    # (GRANTLINE_DATABASE_POOL_SIZE) is never opened by the vault.
    database_driver_pool_size: int = Field(default=10, ge=1, le=200)

    # The master keyring: a JSON document from a mounted Secret file (preferred) or a variable.
    master_keyring_file: Path | None = None
    master_keyring: SecretStr | None = None
    # Key of the audit fingerprints (base64, >= 16 bytes). Unset: derived with HKDF from the active
    # master key, so fingerprints of one token differ across a master rotation.
    fingerprint_key: SecretStr | None = None

    # Refuse sealed values in the unbound format (version 1: not bound to owner and provider). Turn on
    # once `grantline keys status` counts no unbound value left (after `grantline keys reseal`).
    require_bound_seals: bool = False

    # Unwrapped data keys kept in memory.
    data_key_cache_size: int = Field(default=10_000, ge=1)
    data_key_cache_ttl_seconds: float = Field(default=300.0, gt=0)
    # Values sealed under one data key version before the next is created (automatic rotation).
    data_key_max_encryptions: int = Field(default=DEFAULT_MAX_ENCRYPTIONS, ge=16, le=2**32)

    # A token expiring within this margin is refreshed inline by resolve.
    refresh_margin_seconds: int = Field(default=60, ge=0)
    # How long one replica may hold a connection's refresh lease (longer than a provider call can take).
    refresh_lease_seconds: int = Field(default=60, ge=5)

    # vault.report: a connection is force-refreshed on a reported 401 at most once per interval.
    report_refresh_min_interval_seconds: float = Field(default=10.0, ge=0)

    # Provider calls.
    provider_timeout_seconds: float = Field(default=10.0, gt=0)
    provider_max_attempts: int = Field(default=3, ge=1, le=10)
    provider_retry_base_seconds: float = Field(default=0.2, ge=0)
    provider_max_retry_after_seconds: float = Field(default=10.0, ge=0)
    revoke_timeout_seconds: float = Field(default=5.0, gt=0)
    # A provider revocation call that fails is retried from vault.pending_revocations: after
    # base * 2^n seconds (at most max), up to max_attempts calls in all (defaults: about 9 hours).
    revoke_retry_base_seconds: float = Field(default=30.0, gt=0)
    revoke_retry_max_seconds: float = Field(default=3600.0, gt=0)
    revoke_max_attempts: int = Field(default=15, ge=1, le=100)
    revoke_retry_interval_seconds: float = Field(default=10.0, gt=0)

    # The resolve hot path (raw nats-py + psycopg, micro-batched).
    resolve_db_connections: int = Field(default=3, ge=1, le=64)
    resolve_max_batch: int = Field(default=256, ge=1)
    # Resolve audit records are buffered and written to the outbox in one insert per flush.
    audit_flush_interval_seconds: float = Field(default=0.1, gt=0)
    audit_flush_max_records: int = Field(default=1000, ge=1)

    # Requests handled at once per replica: vault.refresh (mostly waiting on providers), and each
    # of the other request subjects.
    refresh_workers: int = Field(default=64, ge=1, le=1000)
    request_workers: int = Field(default=8, ge=1)

    # Run grants (docs/runners.md): the public JWK set of satisfaction's signing keys, from a mounted
    # file (preferred) or a variable. A grant that lives longer than the limit is refused, and a
    # finished run is remembered that long.
    run_grant_verification_keys_file: Path | None = None
    run_grant_verification_keys: SecretStr | None = None
    run_grant_max_lifetime_seconds: int = Field(default=24 * 3600, ge=60, le=7 * 24 * 3600)

    # Google RISC: where its signing keys are published, and how long a fetched set is reused.
    risc_jwks_url: str = "https://www.googleapis.com/oauth2/v3/certs"
    risc_jwks_ttl_seconds: float = Field(default=3600.0, gt=0)
