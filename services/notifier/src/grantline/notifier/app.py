"""Wiring of the notifier: consumers that queue deliveries, the delivery loop, the gateway's requests."""

from datetime import timedelta

from grantline.notifier.adapters.sealing import SecretSealer
from grantline.notifier.adapters.webhook_sender import WebhookSender
from grantline.notifier.entrypoints.dispatcher import dispatcher
from grantline.notifier.entrypoints.event_consumers import event_consumers
from grantline.notifier.entrypoints.requests import serve_endpoint_requests
from grantline.notifier.service.dispatch import DispatchPolicy
from grantline.notifier.settings import NotifierSettings
from grantline.runtime.service_runtime import ServiceRuntime


def create_runtime(settings: NotifierSettings | None = None) -> ServiceRuntime:
    """Build the notifier runtime."""
    settings = settings or NotifierSettings()
    sealer = SecretSealer.from_setting(settings.notifier_sealing_key, environment=settings.environment)
    runtime = ServiceRuntime(settings)
    for consumer in event_consumers(runtime, settings):
        runtime.add_background_task(consumer.run)
    allow_private = bool(settings.allow_private_webhook_urls)
    sender = WebhookSender(timeout_seconds=settings.webhook_timeout_seconds, allow_private=allow_private)
    policy = DispatchPolicy(
        max_attempts=settings.webhook_max_attempts,
        retry_scale=settings.webhook_retry_scale,
        batch=settings.webhook_batch,
        lease=timedelta(seconds=settings.webhook_timeout_seconds * 3 + 30),
    )
    runtime.add_background_task(dispatcher(runtime, sender, sealer, policy, settings.webhook_poll_seconds))
    runtime.on_stop(sender.aclose)
    serve_endpoint_requests(runtime, settings, sealer)
    return runtime
