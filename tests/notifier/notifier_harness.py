"""The notifier in-process, and a real HTTP receiver that records what it is sent."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from grantline.notifier.app import create_runtime
from grantline.notifier.settings import NotifierSettings
from grantline.runtime.service_runtime import ServiceRuntime


def make_notifier(nats_url: str, database_url: str, **overrides: Any) -> ServiceRuntime:
    values: dict[str, Any] = {
        "nats_url": nats_url,
        "database_url": database_url,
        "environment": "test",
        "database_pool_size": 4,
        "allow_private_webhook_urls": True,
        # Retries after ~5 ms, 30 ms, 120 ms, ...: the schedule's shape, in test time.
        "webhook_retry_scale": 0.001,
        "webhook_poll_seconds": 0.02,
        "webhook_timeout_seconds": 2,
    }
    settings = NotifierSettings(**{**values, **overrides})
    return create_runtime(settings)


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A tenant's endpoint: answers each POST with the next status of ``statuses`` (then the last)."""

    url: str = ""
    statuses: list[int] = field(default_factory=lambda: [200])
    received: list[Received] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append(Received(dict(request.headers), await request.read()))
        status = self.statuses[min(len(self.received) - 1, len(self.statuses) - 1)]
        return web.Response(status=status, text="ok")


@asynccontextmanager
async def receiver(statuses: list[int] | None = None) -> AsyncIterator[Receiver]:
    """A real HTTP server on a free loopback port."""
    found = Receiver(statuses=statuses or [200])
    app = web.Application()
    app.router.add_post("/hooks", found.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    found.url = f"http://127.0.0.1:{port}/hooks"
    try:
        yield found
    finally:
        await runner.cleanup()
