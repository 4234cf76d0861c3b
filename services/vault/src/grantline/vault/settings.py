"""Settings of the vault (environment variables with the ``GRANTLINE_`` prefix)."""

from grantline.common.settings import ServiceSettings


class VaultSettings(ServiceSettings):
    service_name: str = "vault"
    http_port: int = 8081
