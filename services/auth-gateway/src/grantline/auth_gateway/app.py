"""Wiring of the auth gateway: one runtime with its subscribers and background tasks."""

from grantline.auth_gateway.adapters.tables import outbox
from grantline.auth_gateway.settings import GatewaySettings
from grantline.common.runtime import ServiceRuntime


def create_runtime(settings: GatewaySettings | None = None) -> ServiceRuntime:
    """Build the auth gateway runtime."""
    settings = settings or GatewaySettings()
    runtime = ServiceRuntime(settings, outbox=outbox)
    return runtime
