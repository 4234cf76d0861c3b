"""`/v1/proxy/{provider}/{path}`: a tool's call to a provider's API, with `Authorization: Bearer <run grant>`;
`/v1/mcp/{provider}`: the streamable-HTTP endpoint of the provider's remote MCP server, the same way.

Optional headers: `Grantline-Connection` (which of the user's connections of the provider, when they
have several; the default otherwise), `Grantline-Tool` (the tool's name, for the audit record) and
`Grantline-Upstream-Host` (one of the provider's other API hosts, e.g. `gmail.googleapis.com`).
Errors of the proxy itself are problem details (RFC 9457) with a `code` and the same code in a
`Grantline-Error` header; an answer without that header is the provider's own.

Written against ASGI directly: the request and response objects of a framework cost more CPU per
call than the rest of the proxy's own work, and a streamed body needs nothing but `send`.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator

from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from grantline.proxy.domain.mcp_messages import error_response
from grantline.proxy.service.calls import Answer, CallRequest, McpError, Problem
from grantline.proxy.service.proxy_call import ProxyService

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
ERROR_HEADER = "Grantline-Error"
_MAX_TOOL = 200
_CONNECTION_ID = re.compile(r"[A-Za-z0-9_.:-]{1,200}")


def problem_parts(problem: Problem) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The proxy's own error as problem details, marked with `Grantline-Error`."""
    body = {"type": "about:blank", "title": problem.code.replace("_", " "), "status": problem.status}
    body |= {"code": problem.code, "detail": problem.message}
    content = json.dumps(body).encode()
    headers = [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(content)).encode()),
        (ERROR_HEADER.lower().encode(), problem.code.encode()),
    ]
    if problem.status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="grantline-proxy"'))
    if problem.retry_after is not None:
        headers.append((b"retry-after", str(max(1, round(problem.retry_after))).encode()))
    return problem.status, headers, content


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


def _call(scope: Scope, receive: Receive, kind: str) -> CallRequest | Problem:
    headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]]
    found = {
        name.lower(): value
        for name, value in headers
        if name.lower().startswith(("authorization", "content-length", "grantline-"))
    }
    scheme, _, grant = found.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not grant.strip():
        return Problem(401, "grant_missing", "send the run grant as Authorization: Bearer")
    length_header = found.get("content-length")
    try:
        length = int(length_header) if length_header is not None else None
    except ValueError:
        return Problem(400, "invalid_request", "Content-Length is not a number")
    # The raw path as sent (percent-encoding kept): the provider decodes it, not the proxy.
    raw = (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    # /v1/proxy/<provider>/<path> or /v1/mcp/<provider>
    provider, _, path = raw.split("/", 3)[3].partition("/")
    tool = found.get("grantline-tool")
    connection = found.get("grantline-connection")
    if connection is not None and not _CONNECTION_ID.fullmatch(connection):
        return Problem(400, "invalid_request", "Grantline-Connection is not a connection id")
    return CallRequest(
        grant=grant.strip(),
        provider=provider,
        method=scope["method"],
        path=path,
        query=scope.get("query_string", b"").decode("latin-1"),
        headers=headers,
        body=_body(receive),
        content_length=length,
        tool=tool[:_MAX_TOOL] if tool else None,
        host=found.get("grantline-upstream-host"),
        kind=kind,
        connection_id=connection,
    )


async def _send_answer(answer: Answer, send: Send) -> None:
    headers = [
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in answer.headers
        if answer.content is None or name.lower() != "content-length"
    ]
    if answer.content is not None:
        headers.append((b"content-length", str(len(answer.content)).encode()))
        await send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await send({"type": "http.response.body", "body": answer.content})
        return
    assert answer.stream is not None
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    try:
        async for chunk in answer.stream:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except OSError:
        return  # the tool went away; the stream's own cleanup has run
    await send({"type": "http.response.body", "body": b""})


class _ProxyEndpoint:
    """An ASGI endpoint (a class, so that Starlette's router hands it the raw scope for every method)."""

    def __init__(self, service: ProxyService, kind: str) -> None:
        self._service = service
        self._kind = kind

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        call = _call(scope, receive, self._kind)
        if isinstance(call, CallRequest):
            try:
                answer = await self._service.call(call)
            except Problem as problem:
                call = problem
            else:
                await _send_answer(answer, send)
                return
        if isinstance(call, McpError):
            content = error_response(call.jsonrpc_id, call.code, call.message)
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(content)).encode()),
                (ERROR_HEADER.lower().encode(), call.code.encode()),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": content})
            return
        status, headers, content = problem_parts(call)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})


def proxy_routes(service: ProxyService) -> list[Route]:
    """The proxy's HTTP routes."""
    api, mcp = _ProxyEndpoint(service, "api"), _ProxyEndpoint(service, "mcp")
    return [
        Route("/v1/proxy/{provider}", api),
        Route("/v1/proxy/{provider}/{path:path}", api),
        # The streamable-HTTP endpoint of a remote MCP server (docs/proxy.md).
        Route("/v1/mcp/{provider}", mcp),
    ]
