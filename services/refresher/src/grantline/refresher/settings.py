"""Settings of the refresher (environment variables with the ``GRANTLINE_`` prefix)."""

from grantline.common.settings import ServiceSettings


class RefresherSettings(ServiceSettings):
    service_name: str = "refresher"
    http_port: int = 8082
