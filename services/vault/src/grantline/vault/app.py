"""Wiring of the vault: keys, provider client, request handlers, the resolve hot path, audit flushing."""

from __future__ import annotations

import secrets
import socket

# mypy reads the catalogue/ data directory as a namespace package shadowing catalogue.py.
from grantline.providers.catalogue import load_catalogue
from grantline.runtime.db.urls import libpq_url
from grantline.runtime.run_grants import RunGrantVerifier, required_key_set
from grantline.runtime.service_runtime import ServiceRuntime
from grantline.vault.adapters.audit_buffer import AuditBuffer
from grantline.vault.adapters.data_key_store import DataKeyStore
from grantline.vault.adapters.keyring_source import KeyringSource, fingerprint_key
from grantline.vault.adapters.outbox import OUTBOX
from grantline.vault.adapters.provider_client import ProviderClient
from grantline.vault.adapters.resolve_reader import ResolveReader
from grantline.vault.domain import DataKeyCache
from grantline.vault.entrypoints.finished_runs import finished_runs_consumer, prune_finished_runs
from grantline.vault.entrypoints.request_handlers import refresh_responder, request_responders
from grantline.vault.entrypoints.resolve_subscription import report_subscription, resolve_subscription
from grantline.vault.entrypoints.revocation_retries import retry_revocations_forever
from grantline.vault.service.context import VaultContext
from grantline.vault.service.refresh import Refresher
from grantline.vault.service.report import ReportService
from grantline.vault.service.resolve import ResolveService
from grantline.vault.service.step_up import StepUpService
from grantline.vault.settings import VaultSettings


def build_context(
    settings: VaultSettings, runtime: ServiceRuntime, providers: ProviderClient | None = None
) -> VaultContext:
    """The use cases' dependencies."""
    keyring = KeyringSource(settings)
    cache = DataKeyCache(
        max_size=settings.data_key_cache_size, ttl_seconds=settings.data_key_cache_ttl_seconds
    )
    return VaultContext(
        settings=settings,
        catalogue=load_catalogue(settings.provider_dirs, sandbox_url=settings.sandbox_url),
        keys=DataKeyStore(keyring, cache, max_encryptions=settings.data_key_max_encryptions),
        providers=providers or ProviderClient(settings),
        fingerprint_key=fingerprint_key(settings, keyring.keyring),
        outbox=OUTBOX,
        transaction=runtime.driver_transaction,
        single_statement=runtime.single_statement,
        instance_id=f"{socket.gethostname()[:60]}-{secrets.token_hex(4)}",
    )


def run_grant_verifier(settings: VaultSettings) -> RunGrantVerifier:
    """The verifier of run grants; without their public keys nothing resolves, so the vault does not start."""
    key_set = required_key_set(
        "GRANTLINE_RUN_GRANT_VERIFICATION_KEYS(_FILE)",
        file=settings.run_grant_verification_keys_file,
        value=settings.run_grant_verification_keys,
        missing="the vault needs the run grant verification keys: set "
        "GRANTLINE_RUN_GRANT_VERIFICATION_KEYS_FILE (`grantline run-grants public-keys`)",
    )
    return RunGrantVerifier(key_set, max_lifetime_seconds=settings.run_grant_max_lifetime_seconds)


def create_runtime(
    settings: VaultSettings | None = None, providers: ProviderClient | None = None
) -> ServiceRuntime:
    """Build the vault runtime."""
    settings = settings or VaultSettings()
    runtime = ServiceRuntime(settings, outbox=OUTBOX)
    ctx = build_context(settings, runtime, providers)
    refresher = Refresher(ctx)
    refresh = refresh_responder(ctx, refresher)
    reader = ResolveReader(
        libpq_url(settings.database_url),
        connections=settings.resolve_db_connections,
        max_batch=settings.resolve_max_batch,
    )
    audit = AuditBuffer(
        libpq_url(settings.database_url),
        interval_seconds=settings.audit_flush_interval_seconds,
        max_records=settings.audit_flush_max_records,
        on_flushed=lambda: runtime.relay.wake() if runtime.relay is not None else None,
    )
    resolve_service = ResolveService(ctx, reader, refresher, audit, run_grant_verifier(settings))
    resolve = resolve_subscription(resolve_service)
    report = report_subscription(
        ReportService(ctx, resolve_service, refresher, StepUpService(ctx, resolve_service))
    )
    runtime.add_background_task(audit.run)
    finished = finished_runs_consumer(runtime)
    runtime.add_background_task(finished.run)

    async def prune() -> None:
        await prune_finished_runs(runtime, settings.run_grant_max_lifetime_seconds)

    runtime.add_background_task(prune)

    async def retry_revocations() -> None:
        await retry_revocations_forever(ctx)

    runtime.add_background_task(retry_revocations)

    runtime.serve_requests(resolve, report, refresh, *request_responders(ctx))

    @runtime.on_stop
    async def _close_clients() -> None:
        # After the responders stopped (the runtime stops them first), so no request still uses these.
        await audit.flush()
        await audit.close()
        await reader.close()
        await ctx.providers.aclose()

    runtime.vault = ctx  # type: ignore[attr-defined]  # for tests and the CLI
    return runtime
