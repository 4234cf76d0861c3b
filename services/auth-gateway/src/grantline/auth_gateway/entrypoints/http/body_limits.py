"""Request body limits per route family, enforced on the raw ASGI stream before any parsing.

Without them an unauthenticated 55 MB POST grows the gateway by ~170 MB before the 401: FastAPI
reads and parses the whole body before a route's dependencies (the API key check) run. This
middleware refuses a declared `Content-Length` over the limit at once, and otherwise reads the
body chunk by chunk, stopping at the first byte over the limit; only a body within its limit is
handed to the app. The gateway never holds more than the limit of one request's body.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from grantline.auth_gateway.entrypoints.http.problem_details import problem_response

WEBHOOK_PREFIX = "/v1/webhooks/"
UI_PREFIXES = ("/admin", "/connect")


@dataclass(frozen=True)
class BodyLimits:
    """Largest body, in bytes, of each route family."""

    api: int
    ui_form: int
    webhook: int

    def for_path(self, path: str) -> tuple[int, str]:
        """The limit that applies to a request path, and what to call it in the refusal."""
        if path.startswith(WEBHOOK_PREFIX):
            return self.webhook, "a webhook body"
        if any(path == prefix or path.startswith(prefix + "/") for prefix in UI_PREFIXES):
            return self.ui_form, "a form"
        return self.api, "a request body"


class _TooLarge(Exception):
    pass


class _Disconnected(Exception):
    """The client went away before sending its whole body: there is no one to answer."""


class RequestBodyLimitMiddleware:
    """Answers 413 (problem details) to a body over its route's limit; the app never sees it."""

    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, what = self.limits.for_path(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(scope, receive, send, limit, what)
            return
        try:
            body = await _read_body(receive, limit)
        except _TooLarge:
            await _refuse(scope, receive, send, limit, what)
            return
        except _Disconnected:
            return
        await self.app(scope, _replay(body, receive), send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


async def _read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: only `http.disconnect` is left to wait for

    return replayed


async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int, what: str) -> None:
    response = problem_response(413, "payload_too_large", f"{what} is at most {limit} bytes")
    # Tell the client (and any proxy) not to send the rest on this connection.
    response.headers["Connection"] = "close"
    await response(scope, receive, send)
