"""Wiring of the satisfaction service: one runtime with its subscribers and background tasks."""

from grantline.common.runtime import ServiceRuntime
from grantline.satisfaction.adapters.tables import outbox
from grantline.satisfaction.settings import SatisfactionSettings


def create_runtime(settings: SatisfactionSettings | None = None) -> ServiceRuntime:
    """Build the satisfaction service runtime."""
    settings = settings or SatisfactionSettings()
    runtime = ServiceRuntime(settings, outbox=outbox)
    return runtime
