"""Wiring of the audit service: one runtime with its subscribers and background tasks."""

from grantline.audit.adapters.tables import outbox
from grantline.audit.settings import AuditSettings
from grantline.common.runtime import ServiceRuntime


def create_runtime(settings: AuditSettings | None = None) -> ServiceRuntime:
    """Build the audit service runtime."""
    settings = settings or AuditSettings()
    runtime = ServiceRuntime(settings, outbox=outbox)
    return runtime
