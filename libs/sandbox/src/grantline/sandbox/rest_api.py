"""A small REST API behind each sandbox profile, for the tool-call proxy (`/p/{profile}/api/...`).

It behaves as provider APIs document: a bearer access token (or the API key of the api_key profile)
authenticates every call and an expired, revoked or unknown one gets 401 with
`WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750); a write needs the `write` scope (else
403 `insufficient_scope`). Beyond records a user reads and writes it has what a proxy must handle:
a large body streamed in chunks, a server-sent event stream, a redirect to any URL (a foreign host),
429 with `Retry-After`, and an echo of the headers it received (never the credential itself).

Requests here are not added to the state's recording: the proxy benchmark sends hundreds of
thousands, and nothing in the OAuth tests looks at them.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from grantline.sandbox.common import sandbox_state
from grantline.sandbox.profiles import PROFILES
from grantline.sandbox.state import SandboxState

_CHUNK = 64 * 1024
_MAX_LARGE = 1024 * 1024 * 1024
_MAX_EVENTS = 100_000


class _Caller:
    """Who a valid credential belongs to, and what it may do."""

    def __init__(self, subject: str, scopes: list[str]) -> None:
        self.subject = subject
        self.scopes = scopes


def _unauthorized(description: str) -> JSONResponse:
    return JSONResponse(
        {"error": "invalid_token", "error_description": description},
        status_code=401,
        headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{description}"'},
    )


def _credential(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.headers.get("x-api-key") or None


def _caller(request: Request) -> _Caller | Response:
    """The caller, or the response that refuses it (unknown profile, missing or dead credential)."""
    profile = PROFILES.get(request.path_params["profile"])
    if profile is None:
        return JSONResponse({"error": "not_found"}, status_code=404)
    presented = _credential(request)
    if presented is None:
        return _unauthorized("no access token")
    state = sandbox_state(request)
    if profile.api_key_only:
        with state.lock:
            key = state.api_keys.get(presented)
            if key is None or key.revoked:
                return _unauthorized("unknown or revoked API key")
            return _Caller(key.subject, ["read", "write"])
    token = state.live_token(presented, "access_token")
    if token is None:
        return _unauthorized("the access token is invalid, expired or revoked")
    with state.lock:
        grant = state.grants[token.grant_id]
    if grant.profile != profile.name:
        return _unauthorized("the access token was issued for another API")
    return _Caller(grant.subject, list(grant.scopes))


def _items(state: SandboxState, subject: str) -> dict[str, dict[str, Any]]:
    with state.lock:
        return state.api_items.setdefault(subject, {})


async def list_items(request: Request) -> Response:
    """GET items: the caller's records."""
    caller = _caller(request)
    if isinstance(caller, Response):
        return caller
    items = _items(sandbox_state(request), caller.subject)
    return JSONResponse({"items": list(items.values()), "owner": caller.subject})


async def get_item(request: Request) -> Response:
    """GET items/{id}: one of the caller's records (404 for anyone else's)."""
    caller = _caller(request)
    if isinstance(caller, Response):
        return caller
    item = _items(sandbox_state(request), caller.subject).get(request.path_params["item_id"])
    if item is None:
        return JSONResponse({"error": "not_found"}, status_code=404)
    return JSONResponse(item)


async def create_item(request: Request) -> Response:
    """POST items: a JSON object becomes a record of the caller; needs the `write` scope."""
    caller = _caller(request)
    if isinstance(caller, Response):
        return caller
    if "write" not in caller.scopes:
        return JSONResponse(
            {"error": "insufficient_scope", "scope": "write"},
            status_code=403,
            headers={"WWW-Authenticate": 'Bearer error="insufficient_scope", scope="write"'},
        )
    try:
        body = json.loads(await request.body())
    except ValueError:
        return JSONResponse({"error": "invalid_json"}, status_code=400)
    if not isinstance(body, dict):
        return JSONResponse({"error": "an object is required"}, status_code=400)
    item = {**body, "id": f"item_{secrets.token_hex(6)}", "owner": caller.subject}
    _items(sandbox_state(request), caller.subject)[item["id"]] = item
    return JSONResponse(item, status_code=201)


def _bounded_int(request: Request, name: str, default: int, maximum: int) -> int | None:
    try:
        value = int(request.query_params.get(name, default))
    except ValueError:
        return None
    return value if 0 <= value <= maximum else None


async def large(request: Request) -> Response:
    """GET large?size=N: N bytes, streamed in 64 KiB chunks without a length (chunked encoding)."""
    caller = _caller(request)
    if isinstance(caller, Response):
        return caller
    size = _bounded_int(request, "size", 1024 * 1024, _MAX_LARGE)
    if size is None:
        return JSONResponse({"error": "size must be 0..1 GiB"}, status_code=400)

    async def chunks() -> AsyncIterator[bytes]:
        block = b"x" * _CHUNK
        left = size
        while left > 0:
            yield block[: min(left, _CHUNK)]
            left -= _CHUNK

    return StreamingResponse(chunks(), media_type="application/octet-stream")


async def events(request: Request) -> Response:
    """GET events?count=N&interval_ms=M: server-sent events; count=0 streams until the client leaves."""
    caller = _caller(request)
    if isinstance(caller, Response):
        return caller
    count = _bounded_int(request, "count", 3, _MAX_EVENTS)
    interval = _bounded_int(request, "interval_ms", 10, 60_000)
    if count is None or interval is None:
        return JSONResponse({"error": "count 0..100000, interval_ms 0..60000"}, status_code=400)

    async def stream() -> AsyncIterator[bytes]:
        sent = 0
        while count == 0 or sent < count:
            sent += 1
            yield f"id: {sent}\nevent: tick\ndata: {json.dumps({'n': sent})}\n\n".encode()
            await asyncio.sleep(interval / 1000)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


async def redirect(request: Request) -> Response:
    """GET redirect?to=URL: 302 to any URL, as an API moving a resource (or a hostile one) does."""
    caller = _caller(request)
    if isinstance(caller, Response):
        return caller
    target = request.query_params.get("to", "")
    if not target:
        return JSONResponse({"error": "to is required"}, status_code=400)
    return RedirectResponse(target, status_code=302)


async def rate_limited(request: Request) -> Response:
    """GET rate_limited?retry_after=S: 429 with Retry-After, as providers answer a burst."""
    caller = _caller(request)
    if isinstance(caller, Response):
        return caller
    seconds = _bounded_int(request, "retry_after", 7, 3600)
    return JSONResponse(
        {"error": "rate_limited", "message": "slow down"},
        status_code=429,
        headers={"Retry-After": str(seconds if seconds is not None else 7)},
    )


async def echo(request: Request) -> Response:
    """Any method on echo: what arrived (method, path, query, headers, body size), not the credential."""
    caller = _caller(request)
    if isinstance(caller, Response):
        return caller
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
    headers = {
        name: ("<credential>" if name in ("authorization", "x-api-key") else value)
        for name, value in request.headers.items()
    }
    return JSONResponse(
        {
            "method": request.method,
            "path": request.url.path,
            "query": dict(request.query_params),
            "headers": headers,
            "body_bytes": received,
            "owner": caller.subject,
        }
    )


REST_API_ROUTES = [
    Route("/p/{profile}/api/items", list_items, methods=["GET"]),
    Route("/p/{profile}/api/items", create_item, methods=["POST"]),
    Route("/p/{profile}/api/items/{item_id}", get_item, methods=["GET"]),
    Route("/p/{profile}/api/large", large, methods=["GET"]),
    Route("/p/{profile}/api/events", events, methods=["GET"]),
    Route("/p/{profile}/api/redirect", redirect, methods=["GET"]),
    Route("/p/{profile}/api/rate_limited", rate_limited, methods=["GET"]),
    Route("/p/{profile}/api/echo", echo, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
]
