"""Wiring of the refresher: the schedule consumer, the refresh worker and the watch loops."""

from datetime import timedelta

from grantline.refresher.domain.outcomes import RetryPolicy
from grantline.refresher.domain.schedule import SchedulePolicy
from grantline.refresher.entrypoints.connection_events import subscribe_connection_events
from grantline.refresher.entrypoints.refresh_worker import RefreshWorker, WorkerLimits
from grantline.refresher.entrypoints.schedule_watch import due_gauge_loop, expiry_warning_loop
from grantline.refresher.settings import RefresherSettings
from grantline.runtime.outbox_relay import OutboxTable
from grantline.runtime.service_runtime import ServiceRuntime

# refresher.outbox (adapters/tables.py declares it, for the migrations; the service runs on psycopg).
OUTBOX = OutboxTable("refresher")


def schedule_policy(settings: RefresherSettings) -> SchedulePolicy:
    """The schedule rules the settings describe."""
    return SchedulePolicy(
        margin=timedelta(seconds=settings.refresh_margin_seconds),
        provider_margins={p: timedelta(seconds=s) for p, s in settings.refresh_provider_margins.items()},
        jitter=timedelta(seconds=settings.refresh_jitter_seconds),
        warning_window=timedelta(days=settings.expiry_warning_days),
    )


def create_runtime(settings: RefresherSettings | None = None) -> ServiceRuntime:
    """Build the refresher runtime."""
    settings = settings or RefresherSettings()
    runtime = ServiceRuntime(settings, outbox=OUTBOX)
    policy = schedule_policy(settings)
    subscribe_connection_events(runtime, policy, workers=settings.schedule_consumer_workers)
    worker = RefreshWorker(
        runtime,
        policy=policy,
        retry=RetryPolicy(settings.refresh_retry_base_seconds, settings.refresh_retry_max_seconds),
        limits=WorkerLimits(
            batch_size=settings.refresh_batch_size,
            max_in_flight=settings.refresh_max_in_flight,
            provider_concurrency=settings.refresh_provider_concurrency,
            lease_seconds=settings.refresh_lease_seconds,
            poll_seconds=settings.refresh_poll_seconds,
            breaker_failures=settings.refresh_breaker_failures,
            breaker_open_seconds=settings.refresh_breaker_open_seconds,
        ),
        vault_timeout=settings.vault_timeout_seconds,
    )
    runtime.add_background_task(worker.run)
    runtime.on_stop(worker.drain)
    runtime.add_background_task(
        expiry_warning_loop(runtime, OUTBOX, every_seconds=settings.expiry_scan_seconds)
    )
    runtime.add_background_task(due_gauge_loop(runtime))
    return runtime
