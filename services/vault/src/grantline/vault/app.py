"""Wiring of the vault: one runtime with its subscribers and background tasks."""

from grantline.common.runtime import ServiceRuntime
from grantline.vault.adapters.tables import outbox
from grantline.vault.settings import VaultSettings


def create_runtime(settings: VaultSettings | None = None) -> ServiceRuntime:
    """Build the vault runtime."""
    settings = settings or VaultSettings()
    runtime = ServiceRuntime(settings, outbox=outbox)
    return runtime
