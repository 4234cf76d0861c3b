"""Wiring of the satisfaction service: one runtime with its consumers, responder and background tasks."""

from functools import partial

from grantline.runtime.run_grants import RunGrantSigner, RunGrantVerifier, public_key_set, required_key_set
from grantline.runtime.service_runtime import ServiceRuntime
from grantline.satisfaction.adapters.catalogue_rows import configured_catalogue
from grantline.satisfaction.adapters.connect_links import GatewayConnectLinks
from grantline.satisfaction.adapters.outbox import OUTBOX
from grantline.satisfaction.entrypoints.check_responder import CheckResponder
from grantline.satisfaction.entrypoints.event_consumers import event_consumers
from grantline.satisfaction.entrypoints.grant_renewals import grant_renewals
from grantline.satisfaction.entrypoints.run_request_batches import run_request_consumer
from grantline.satisfaction.service.catalogue_cache import CatalogueCache
from grantline.satisfaction.service.report_memo import ReportMemo
from grantline.satisfaction.service.run_grants import RunGrantIssuer
from grantline.satisfaction.settings import SatisfactionSettings


def run_grant_issuer(settings: SatisfactionSettings) -> RunGrantIssuer:
    """Signs and renews run grants; without signing keys no run can be admitted, so it does not start."""
    key_set = required_key_set(
        "GRANTLINE_RUN_GRANT_SIGNING_KEYS(_FILE)",
        file=settings.run_grant_signing_keys_file,
        value=settings.run_grant_signing_keys,
        missing="satisfaction needs run grant signing keys: set GRANTLINE_RUN_GRANT_SIGNING_KEYS_FILE "
        "(make them with `grantline run-grants keygen`)",
    )
    signer = RunGrantSigner(
        key_set, active_kid=settings.run_grant_active_kid, ttl_seconds=settings.run_grant_ttl_seconds
    )
    # Renewals are checked against satisfaction's own keys (the public half of the signing set).
    # (Any lifetime the setting allows: a grant issued before the TTL was lowered still renews.)
    verifier = RunGrantVerifier(public_key_set(key_set), max_lifetime_seconds=7 * 24 * 3600)
    return RunGrantIssuer(signer, verifier)


def create_runtime(settings: SatisfactionSettings | None = None) -> ServiceRuntime:
    """Build the satisfaction service runtime."""
    settings = settings or SatisfactionSettings()
    runtime = ServiceRuntime(settings, outbox=OUTBOX)
    catalogue = CatalogueCache()
    runtime.catalogue = catalogue  # type: ignore[attr-defined]  # tests and the CLI read it
    # The catalogue is read and seeded on psycopg; it writes no events, so the relay sleeps on.
    catalogue_transactions = partial(runtime.driver_transaction, wake_relay=False)

    @runtime.on_start
    async def seed_catalogue() -> None:
        # Before subscribers start, so no report is computed against an empty catalogue.
        await catalogue.seed_and_load(
            catalogue_transactions, configured_catalogue(settings.sandbox_url, settings.provider_dirs)
        )

    async def refresh_catalogue() -> None:
        await catalogue.refresh_forever(catalogue_transactions, settings.catalogue_refresh_seconds)

    runtime.add_background_task(refresh_catalogue)
    memo = ReportMemo()  # shared by admissions and checks: the same apps' reports
    grants = run_grant_issuer(settings)
    # Every consumer is a batched pull loop: runs.requested is the hot path.
    links = GatewayConnectLinks(lambda: runtime.nats, timeout=settings.connect_link_timeout_seconds)
    runs = run_request_consumer(
        runtime,
        catalogue,
        memo,
        grants,
        loops=settings.run_workers,
        batch_size=settings.run_batch_size,
        links=links if settings.connect_links else None,
    )
    for consumer in [runs, *event_consumers(runtime, settings, catalogue, grants)]:
        runtime.add_background_task(consumer.run)
    # Responders start after the on_start hooks, so no check is answered against an empty catalogue.
    checks = CheckResponder(runtime, catalogue, memo, reads_in_flight=settings.check_workers)
    runtime.serve_requests(checks, grant_renewals(runtime, grants))
    return runtime
