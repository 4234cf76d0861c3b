"""``/healthz``, ``/readyz`` and ``/metrics``, served by every service."""

import asyncio
import time
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from grantline.runtime.telemetry.metrics import DEPENDENCY_UP, render_metrics

ReadinessCheck = Callable[[], Awaitable[bool]]


class NotReady(Exception):
    """Raised by a readiness check to say why the service is not ready (shown by ``/readyz``)."""


class Readiness:
    """Caches dependency checks briefly so that probes cannot hammer Postgres."""

    def __init__(self, service: str, checks: dict[str, ReadinessCheck], *, ttl_seconds: float = 1.0) -> None:
        self._service = service
        self._checks = checks
        self._ttl = ttl_seconds
        self._last: tuple[float, dict[str, bool]] | None = None
        self.reasons: dict[str, str] = {}

    async def status(self) -> dict[str, bool]:
        """Each dependency's state (True when reachable)."""
        now = time.monotonic()
        if self._last and now - self._last[0] < self._ttl:
            return self._last[1]
        results: dict[str, bool] = {}
        reasons: dict[str, str] = {}
        for name, check in self._checks.items():
            try:
                results[name] = bool(await asyncio.wait_for(check(), timeout=2.0))
            except NotReady as not_ready:
                results[name] = False
                reasons[name] = str(not_ready)
            except Exception:
                results[name] = False
            DEPENDENCY_UP.labels(self._service, name).set(1 if results[name] else 0)
        self._last = (now, results)
        self.reasons = reasons
        return results


def health_routes(service: str, readiness: Readiness) -> list[Route]:
    """The three operational routes."""

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok", "service": service})

    async def readyz(_: Request) -> Response:
        status = await readiness.status()
        ready = all(status.values())
        body: dict[str, object] = {
            "status": "ready" if ready else "not_ready",
            "service": service,
            "dependencies": status,
        }
        if readiness.reasons:
            body["reasons"] = readiness.reasons
        return JSONResponse(body, status_code=200 if ready else 503)

    async def metrics(_: Request) -> Response:
        body, content_type = render_metrics()
        return Response(body, media_type=content_type)

    return [
        Route("/healthz", healthz, include_in_schema=False),
        Route("/readyz", readyz, include_in_schema=False),
        Route("/metrics", metrics, include_in_schema=False),
    ]
