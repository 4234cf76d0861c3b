"""Helpers for proxy tests: the proxy served on a real port, beside a running vault and the sandbox."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from fixtures.run_grants import mint_grant

from grantline.contract.audit import AuditAction, AuditRecord
from grantline.contract.registry import decode_event
from grantline.devstack.embedded import free_port
from grantline.proxy.app import create_runtime
from grantline.proxy.settings import ProxySettings
from grantline.runtime.service_runtime import ServiceRuntime

TENANT = "tenant-a"


def proxy_settings(nats_url: str, sandbox_url: str, **overrides: Any) -> ProxySettings:
    """Settings of a proxy under test: the sandbox on loopback, quick audit flushes."""
    values: dict[str, Any] = {
        "nats_url": nats_url,
        "environment": "test",
        "allow_private_provider_urls": True,
        "sandbox_url": sandbox_url,
        "audit_flush_interval_seconds": 0.05,
        **overrides,
    }
    return ProxySettings(**values)


@dataclass
class ProxyHarness:
    """A running proxy and an HTTP client for tools."""

    runtime: ServiceRuntime
    url: str
    http: httpx.AsyncClient

    def grant(self, user: str = "alice", providers: Any = ("sandbox",), **kwargs: Any) -> str:
        return mint_grant(kwargs.pop("tenant", TENANT), user, list(providers), **kwargs)

    async def call(
        self, method: str, path: str, grant: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        sent = {"Authorization": f"Bearer {grant}", **(headers or {})}
        return await self.http.request(method, f"{self.url}/v1/proxy/{path}", headers=sent, **kwargs)

    @property
    def state(self) -> Any:
        return self.runtime.proxy_state  # type: ignore[attr-defined]

    async def call_records(self) -> list[AuditRecord]:
        """Every `proxy.call` audit record on the AUDIT stream so far (after a flush)."""
        await self.runtime.proxy_audit.flush()  # type: ignore[attr-defined]
        js = self.runtime.nats.jetstream()
        info = await js.stream_info("AUDIT")
        records = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            with contextlib.suppress(Exception):
                event = decode_event((await js.get_msg("AUDIT", seq)).data or b"")
                if isinstance(event, AuditRecord) and event.action == AuditAction.PROXY_CALL:
                    records.append(event)
        return records


@contextlib.asynccontextmanager
async def running_proxy(settings: ProxySettings) -> AsyncIterator[ProxyHarness]:
    """A proxy started with ``settings`` and served by uvicorn on a free port, stopped on exit."""
    runtime = create_runtime(settings)
    await runtime.start()
    port = free_port()
    config = uvicorn.Config(
        runtime.http_application(),
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            yield ProxyHarness(runtime, f"http://127.0.0.1:{port}", http)
    finally:
        server.should_exit = True
        await task
        await runtime.stop()
