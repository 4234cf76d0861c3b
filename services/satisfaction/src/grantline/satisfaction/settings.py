"""Settings of the satisfaction service (environment variables with the ``GRANTLINE_`` prefix)."""

from pydantic import Field

from grantline.common.settings import ServiceSettings


class SatisfactionSettings(ServiceSettings):
    service_name: str = "satisfaction"
    http_port: int = 8083
    # How often the in-memory catalogue is re-read, so an operator's enable/disable reaches every replica.
    catalogue_refresh_seconds: float = Field(default=30.0, gt=0)
    # Concurrent handlers per consumer; runs.requested and checks are per-user independent.
    run_workers: int = Field(default=16, ge=1, le=256)
    check_workers: int = Field(default=16, ge=1, le=256)
    connection_workers: int = Field(default=4, ge=1, le=256)
