"""``/healthz``, ``/readyz`` and ``/metrics``, served by every service.

What each answers is decided here, whatever serves it: the small server of ``health_server`` for a
service without an HTTP API of its own, or Starlette routes (``health_routes``) added to a service's
API. This module loads neither Starlette nor an HTTP server.
"""

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from grantline.runtime.telemetry.metrics import DEPENDENCY_UP, render_metrics

ReadinessCheck = Callable[[], Awaitable[bool]]
HEALTH_PATHS = ("/healthz", "/readyz", "/metrics")


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


@dataclass(frozen=True)
class HealthAnswer:
    """One answer of the three routes, ready for any HTTP server to send."""

    status: int
    content_type: str
    body: bytes


def _json(document: dict[str, object], status: int = 200) -> HealthAnswer:
    # The same bytes Starlette's JSONResponse writes, so both servers answer alike.
    body = json.dumps(document, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":"))
    return HealthAnswer(status, "application/json", body.encode())


async def health_answer(path: str, service: str, readiness: Readiness) -> HealthAnswer | None:
    """What ``path`` answers, or None when it is not one of the three."""
    if path == "/healthz":
        return _json({"status": "ok", "service": service})
    if path == "/readyz":
        status = await readiness.status()
        ready = all(status.values())
        body: dict[str, object] = {
            "status": "ready" if ready else "not_ready",
            "service": service,
            "dependencies": status,
        }
        if readiness.reasons:
            body["reasons"] = readiness.reasons
        return _json(body, 200 if ready else 503)
    if path == "/metrics":
        metrics, content_type = render_metrics()
        return HealthAnswer(200, content_type, metrics)
    return None
