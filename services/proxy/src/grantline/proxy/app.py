"""Wiring of the tool-call proxy: grant verifier, vault client, upstream pool, run state, audit."""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette

# mypy reads the catalogue/ data directory as a namespace package shadowing catalogue.py.
from grantline.providers.catalogue import load_catalogue
from grantline.proxy.adapters.audit_publisher import AuditPublisher
from grantline.proxy.adapters.upstream_client import UpstreamClient
from grantline.proxy.adapters.vault_client import VaultClient
from grantline.proxy.entrypoints.http_api import proxy_routes
from grantline.proxy.entrypoints.run_events import RunEvents
from grantline.proxy.service.proxy_call import ProxyService
from grantline.proxy.service.run_state import RunState
from grantline.proxy.service.streaming import Streamer
from grantline.proxy.settings import ProxySettings
from grantline.runtime.run_grants import RunGrantVerifier, required_key_set
from grantline.runtime.service_runtime import ServiceRuntime


def run_grant_verifier(settings: ProxySettings) -> RunGrantVerifier:
    """The verifier of run grants; without their public keys no call can be checked, so no start."""
    key_set = required_key_set(
        "GRANTLINE_RUN_GRANT_VERIFICATION_KEYS(_FILE)",
        file=settings.run_grant_verification_keys_file,
        value=settings.run_grant_verification_keys,
        missing="the proxy needs the run grant verification keys: set "
        "GRANTLINE_RUN_GRANT_VERIFICATION_KEYS_FILE (`grantline run-grants public-keys`)",
    )
    return RunGrantVerifier(key_set, max_lifetime_seconds=settings.run_grant_max_lifetime_seconds)


def create_runtime(settings: ProxySettings | None = None) -> ServiceRuntime:
    """Build the proxy runtime (stateless: NATS only, no database)."""
    settings = settings or ProxySettings()
    state = RunState(
        cache_seconds=settings.token_cache_seconds,
        expiry_margin_seconds=settings.token_cache_expiry_margin_seconds,
        cache_size=settings.token_cache_size,
        remember_seconds=settings.run_grant_max_lifetime_seconds,
    )
    holder: list[ServiceRuntime] = []

    def nats():  # type: ignore[no-untyped-def]
        return holder[0].nats

    audit = AuditPublisher(
        nats,
        interval_seconds=settings.audit_flush_interval_seconds,
        max_records=settings.audit_flush_max_records,
        max_buffered=settings.audit_max_buffered,
    )
    upstream = UpstreamClient(connections=settings.upstream_connections)
    service = ProxyService(
        settings,
        load_catalogue(settings.provider_dirs, sandbox_url=settings.sandbox_url),
        run_grant_verifier(settings),
        VaultClient(nats, timeout=settings.vault_timeout_seconds),
        upstream,
        state,
        Streamer(
            state,
            audit,
            excerpt_tenants=settings.audit_response_body_tenants,
            excerpt_bytes=settings.audit_response_body_bytes,
        ),
    )
    runtime = ServiceRuntime(settings, http_app=Starlette(routes=proxy_routes(service)), uses_database=False)
    holder.append(runtime)
    events = RunEvents(state)
    runtime.add_background_task(audit.run)

    async def watch_reconnections() -> None:
        seen = runtime.nats.stats["reconnects"]
        while True:
            await asyncio.sleep(1.0)
            if runtime.nats.stats["reconnects"] != seen:
                seen = runtime.nats.stats["reconnects"]
                await events.reconnected()

    runtime.add_background_task(watch_reconnections)

    @runtime.on_start
    async def _subscribe() -> None:
        await events.start(runtime.nats)

    @runtime.on_stop
    async def _close() -> None:
        await events.stop()
        await audit.flush()
        await upstream.aclose()

    runtime.proxy = service  # type: ignore[attr-defined]  # for tests
    runtime.proxy_state = state  # type: ignore[attr-defined]
    runtime.proxy_audit = audit  # type: ignore[attr-defined]
    return runtime
