"""A small ASGI middleware: one SERVER span per HTTP request, continuing the caller's trace."""

import time

from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from grantline.runtime.telemetry.metrics import HTTP_REQUESTS, HTTP_SECONDS
from grantline.runtime.telemetry.tracing import extract_context, tracer

# Health probes and scrapes are not worth a span each.
_UNTRACED = ("/healthz", "/readyz", "/metrics")


class TracingMiddleware:
    """Starts a span for each request and records request metrics by route template."""

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "") in _UNTRACED:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", [])}
        method = scope.get("method", "GET")
        status = {"code": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        started = time.perf_counter()
        with tracer().start_as_current_span(
            f"{method} {scope.get('path', '')}", context=extract_context(headers), kind=trace.SpanKind.SERVER
        ) as span:
            span.set_attribute("http.request.method", method)
            try:
                await self.app(scope, receive, send_wrapper)
            finally:
                route = scope.get("route")
                template = getattr(route, "path", None) or "unmatched"
                span.update_name(f"{method} {template}")
                span.set_attribute("http.route", template)
                span.set_attribute("http.response.status_code", status["code"])
                if status["code"] >= 500:
                    span.set_status(trace.Status(trace.StatusCode.ERROR))
                HTTP_REQUESTS.labels(self.service, template, str(status["code"])).inc()
                HTTP_SECONDS.labels(self.service, template).observe(time.perf_counter() - started)
