"""Settings of the audit service (environment variables with the ``GRANTLINE_`` prefix)."""

from grantline.common.settings import ServiceSettings


class AuditSettings(ServiceSettings):
    service_name: str = "audit"
    http_port: int = 8084
