"""Wiring of the refresher: one runtime with its subscribers and background tasks."""

from grantline.common.runtime import ServiceRuntime
from grantline.refresher.adapters.tables import outbox
from grantline.refresher.settings import RefresherSettings


def create_runtime(settings: RefresherSettings | None = None) -> ServiceRuntime:
    """Build the refresher runtime."""
    settings = settings or RefresherSettings()
    runtime = ServiceRuntime(settings, outbox=outbox)
    return runtime
