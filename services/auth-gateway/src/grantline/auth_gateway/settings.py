"""Settings of the auth gateway (environment variables with the ``GRANTLINE_`` prefix)."""

from grantline.common.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    service_name: str = "auth-gateway"
    http_port: int = 8080
