"""Wiring of the satisfaction service: one runtime with its consumers, responder and background tasks."""

from grantline.common.runtime import ServiceRuntime
from grantline.satisfaction.adapters.catalogue_tables import configured_catalogue
from grantline.satisfaction.adapters.tables import outbox
from grantline.satisfaction.entrypoints.check_responder import register_check_responder
from grantline.satisfaction.entrypoints.event_consumers import register_consumers
from grantline.satisfaction.entrypoints.run_request_batches import RunRequestBatches
from grantline.satisfaction.service.catalogue_cache import CatalogueCache
from grantline.satisfaction.settings import SatisfactionSettings


def create_runtime(settings: SatisfactionSettings | None = None) -> ServiceRuntime:
    """Build the satisfaction service runtime."""
    settings = settings or SatisfactionSettings()
    runtime = ServiceRuntime(settings, outbox=outbox)
    catalogue = CatalogueCache()
    runtime.catalogue = catalogue  # type: ignore[attr-defined]  # tests and the CLI read it

    @runtime.on_start
    async def seed_catalogue() -> None:
        # Before subscribers start, so no report is computed against an empty catalogue.
        await catalogue.seed_and_load(
            runtime.sessions, configured_catalogue(settings.sandbox_url, settings.provider_dirs)
        )

    async def refresh_catalogue() -> None:
        await catalogue.refresh_forever(runtime.sessions, settings.catalogue_refresh_seconds)

    runtime.add_background_task(refresh_catalogue)
    # runs.requested is the hot path: its own batched pull consumer instead of a FastStream subscriber.
    batches = RunRequestBatches(
        runtime, catalogue, loops=settings.run_workers, batch_size=settings.run_batch_size
    )
    runtime.add_background_task(batches.run)
    register_consumers(runtime, settings, catalogue)
    register_check_responder(runtime, settings, catalogue)
    return runtime
