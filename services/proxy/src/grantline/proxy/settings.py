"""Settings of the tool-call proxy (environment variables with the ``GRANTLINE_`` prefix)."""

from pathlib import Path

from pydantic import Field, SecretStr

from grantline.runtime.settings import ServiceSettings


class ProxySettings(ServiceSettings):
    """Everything the proxy reads from its environment. It keeps no state: no database is used."""

    service_name: str = "proxy"
    http_port: int = 8086

    # Run grants (docs/runners.md): the public JWK set of satisfaction's signing keys, as the vault.
    run_grant_verification_keys_file: Path | None = None
    run_grant_verification_keys: SecretStr | None = None
    run_grant_max_lifetime_seconds: int = Field(default=24 * 3600, ge=60, le=7 * 24 * 3600)

    # A token the vault resolved is reused for the same grant and provider this long at most (and
    # never past its expiry minus the margin). 0 turns the cache off. Revocation and finished-run
    # events drop entries at once; the bound covers an event missed while disconnected.
    token_cache_seconds: float = Field(default=10.0, ge=0, le=300)
    token_cache_expiry_margin_seconds: float = Field(default=30.0, ge=0)
    token_cache_size: int = Field(default=50_000, ge=1)

    # How long the proxy waits for the vault (resolve, report).
    vault_timeout_seconds: float = Field(default=10.0, gt=0)

    # Upstream connections kept open per replica (all providers together).
    upstream_connections: int = Field(default=512, ge=1)
    # Redirects followed (to the provider's own hosts only).
    max_redirects: int = Field(default=5, ge=0, le=20)
    # A request body up to this size is kept so the call can be retried once after a 401.
    replayable_body_bytes: int = Field(default=64 * 1024, ge=0)

    # Audit: records are buffered and published to the AUDIT stream this often (or when a batch fills).
    audit_flush_interval_seconds: float = Field(default=0.1, gt=0)
    audit_flush_max_records: int = Field(default=500, ge=1)
    audit_max_buffered: int = Field(default=200_000, ge=1)
    # Tenants that opted in to a truncated, redacted response excerpt in their audit records.
    audit_response_body_tenants: list[str] = []
    audit_response_body_bytes: int = Field(default=2048, ge=0, le=64 * 1024)
