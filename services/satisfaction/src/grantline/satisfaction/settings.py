"""Settings of the satisfaction service (environment variables with the ``GRANTLINE_`` prefix)."""

from grantline.common.settings import ServiceSettings


class SatisfactionSettings(ServiceSettings):
    service_name: str = "satisfaction"
    http_port: int = 8083
