"""Settings of the satisfaction service (environment variables with the ``GRANTLINE_`` prefix)."""

from pathlib import Path

from pydantic import Field, SecretStr

from grantline.runtime.settings import ServiceSettings


class SatisfactionSettings(ServiceSettings):
    service_name: str = "satisfaction"
    http_port: int = 8083
    # How often the in-memory catalogue is re-read, so an operator's enable/disable reaches every replica.
    catalogue_refresh_seconds: float = Field(default=30.0, gt=0)
    # Concurrent handlers per consumer; runs.requested and checks are per-user independent. Keep the
    # consumers' loops (run + connection + 2 x event workers) within the driver pool, and the checks'
    # reads (check workers) within its autocommit twin: a loop that waits for a connection waits
    # out a whole batch of another loop.
    run_workers: int = Field(default=2, ge=1, le=64)  # batch loops for runs.requested
    run_batch_size: int = Field(default=200, ge=1, le=1000)
    # Mirror reads in flight for satisfaction.check; checks arriving meanwhile share the next read.
    check_workers: int = Field(default=8, ge=1, le=256)
    connection_workers: int = Field(default=2, ge=1, le=256)
    event_workers: int = Field(default=2, ge=1, le=256)
    # Most events one transaction of a consumer handles (connection events, finished runs, resolves).
    event_batch_size: int = Field(default=100, ge=1, le=1000)
    # Every statement runs on psycopg (grantline.runtime.db.driver): each of its two pools (pipelined
    # transactions for the consumers, autocommit for the checks' reads) may open this many connections.
    # SQLAlchemy's pool (GRANTLINE_DATABASE_POOL_SIZE) is never opened by the service.
    database_driver_pool_size: int = Field(default=24, ge=1, le=200)
    # Connect links in runs.held (the gateway mints them): off for a deployment without the gateway,
    # and how long a batch waits for them before the held runs go out without.
    connect_links: bool = True
    connect_link_timeout_seconds: float = Field(default=1.0, gt=0, le=10)

    # Run grants (docs/runners.md): the private JWK set satisfaction signs with, from a mounted Secret
    # file (preferred) or a variable, the key id that signs (default: the set's first key), and how
    # long a grant lives. The vault refuses grants that live longer than its own limit.
    run_grant_signing_keys_file: Path | None = None
    run_grant_signing_keys: SecretStr | None = None
    run_grant_active_kid: str | None = None
    run_grant_ttl_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
