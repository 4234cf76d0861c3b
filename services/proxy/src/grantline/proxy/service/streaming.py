"""The provider's answer on its way to the tool, and the audit record of every call.

A body of known length up to 64 KiB is read at once (the common JSON answer: one write instead of a
streaming response's machinery); anything longer, of unknown length, or a server-sent event stream
is passed on chunk by chunk as it arrives, with the size limit enforced on the way. Each stream is
registered with the run state so that a revocation or the run's end closes it: an event stream gets
a last `grantline.closed` event and ends; any other body is cut off (the tool sees a broken
transfer, never a short body passing for a whole one). The record is written when the body ends.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

from grantline.contract.run_grants import RunGrant
from grantline.proxy.adapters.audit_publisher import AuditPublisher, call_record_json
from grantline.proxy.domain.audit_fields import audit_path, redacted_headers, response_excerpt
from grantline.proxy.domain.upstream import downstream_headers
from grantline.proxy.service.calls import Answer, CallRequest, Problem
from grantline.proxy.service.run_state import OpenStream, ResolvedToken, RunState

log = logging.getLogger(__name__)

_WHOLE_BODY_BYTES = 64 * 1024
# Errors answered inside an MCP exchange (HTTP 200) that are refusals, not failures.
_DENIALS = frozenset(
    {"tool_not_allowed", "reauth_required", "insufficient_scope", "revoked", "not_connected"}
)


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""  # an async generator that yields nothing


class StreamClosed(Exception):
    """The stream was closed by Grantline (revocation, finished run, size limit)."""


@dataclass(slots=True)
class CallAudit:
    """What the audit record of one call will say, filled in as the call goes."""

    grant: RunGrant
    request: CallRequest
    provider: str
    started: float
    connection_id: str | None = None
    retried: bool = False
    # The tool (the tool's header, else the MCP tool called) and the MCP method, when there is one.
    tool: str | None = None
    mcp_method: str | None = None
    excerpt: bytearray = field(default_factory=bytearray)


class Streamer:
    """Turns upstream responses into answers and records every call."""

    def __init__(
        self, state: RunState, audit: AuditPublisher, *, excerpt_tenants: list[str], excerpt_bytes: int
    ) -> None:
        self._state = state
        self._audit = audit
        self._excerpt_tenants = frozenset(excerpt_tenants)
        self._excerpt_bytes = excerpt_bytes

    async def answer(
        self, response: aiohttp.ClientResponse, audit: CallAudit, token: ResolvedToken, limit: int
    ) -> Answer:
        """The answer to send the tool; the record is written when its body has gone."""
        headers = downstream_headers(response.headers.items())
        length = response.content_length
        streaming = response.content_type == "text/event-stream"
        if audit.request.method == "HEAD":
            # No body, but the provider's Content-Length stays: it describes what a GET would return.
            response.release()
            self.record(audit, response.status, 0, headers=headers, token=token)
            return Answer(response.status, headers, stream=_nothing())
        if length is not None and length > limit:
            response.release()
            raise Problem(502, "response_too_large", f"the provider's answer exceeds {limit} bytes")
        if not streaming and length is not None and length <= _WHOLE_BODY_BYTES:
            try:
                content = await response.read()
            except (aiohttp.ClientError, TimeoutError):
                raise Problem(502, "upstream_unavailable", "the provider's answer broke off") from None
            finally:
                response.release()
            self._keep_excerpt(audit, content)
            self.record(audit, response.status, len(content), headers=headers, token=token)
            return Answer(response.status, headers, content=content)
        return Answer(response.status, headers, stream=self._stream(response, audit, token, limit, streaming))

    async def _stream(
        self,
        response: aiohttp.ClientResponse,
        audit: CallAudit,
        token: ResolvedToken,
        limit: int,
        event_stream: bool,
    ) -> AsyncIterator[bytes]:
        handle = OpenStream(
            run=(audit.grant.tenant_id, audit.grant.run_id),
            connection_id=token.connection_id,
            on_close=lambda _reason: response.close(),
        )
        self._state.opened(handle)
        sent, closed = 0, None
        try:
            try:
                async for chunk in response.content.iter_any():
                    if handle.closed_because is not None:
                        break
                    sent += len(chunk)
                    if sent > limit:
                        handle.close("response_too_large")
                        break
                    self._keep_excerpt(audit, chunk)
                    yield chunk
            except (aiohttp.ClientError, TimeoutError):
                if handle.closed_because is None:
                    handle.close("upstream_broke_off")
            closed = handle.closed_because
            if closed is not None:
                if event_stream and closed in ("connection_revoked", "run_finished"):
                    yield f'event: grantline.closed\ndata: {{"reason": "{closed}"}}\n\n'.encode()
                else:
                    raise StreamClosed(closed)
        finally:
            self._state.ended(handle)
            response.release()
            self.record(
                audit,
                response.status,
                sent,
                headers=downstream_headers(response.headers.items()),
                token=token,
                closed=closed,
            )

    def _keep_excerpt(self, audit: CallAudit, chunk: bytes) -> None:
        if audit.grant.tenant_id in self._excerpt_tenants and len(audit.excerpt) < self._excerpt_bytes:
            audit.excerpt += chunk[: self._excerpt_bytes - len(audit.excerpt)]

    def record(
        self,
        audit: CallAudit,
        status: int,
        bytes_out: int,
        *,
        headers: list[tuple[str, str]] | None = None,
        token: ResolvedToken | None = None,
        closed: str | None = None,
        error: str | None = None,
    ) -> None:
        """Queue the call's audit record."""
        request = audit.request
        detail: dict[str, Any] = {
            "method": request.method,
            "path": audit_path("/" + request.path.lstrip("/"), request.query),
            "status": status,
            "bytes_in": request.content_length or 0,
            "bytes_out": bytes_out,
            "duration_ms": round((time.perf_counter() - audit.started) * 1000, 3),
        }
        if request.host:
            detail["host"] = request.host
        if audit.mcp_method:
            detail["mcp_method"] = audit.mcp_method
        if audit.retried:
            detail["retried_after_refresh"] = True
        if closed:
            detail["closed"] = closed
        if error:
            detail["error"] = error
        if audit.grant.tenant_id in self._excerpt_tenants and headers is not None:
            secrets = [token.token.get_secret_value()] if token is not None else []
            detail["response_excerpt"] = response_excerpt(bytes(audit.excerpt), self._excerpt_bytes, secrets)
            detail["response_headers"] = redacted_headers(headers, secrets)
        if error:
            outcome = "denied" if status in (401, 403, 409) or error in _DENIALS else "failure"
        else:
            outcome = "success" if status < 400 and closed is None else "failure"
        grant = audit.grant
        event_id = uuid.uuid4()
        self._audit.add_call(
            event_id,
            call_record_json(
                event_id=event_id,
                occurred_at=datetime.now(UTC),
                tenant_id=grant.tenant_id,
                user_id=grant.user_id,
                app_id=grant.app_id,
                run_id=grant.run_id,
                tool=audit.tool or request.tool,
                provider=audit.provider,
                connection_id=audit.connection_id,
                outcome=outcome,
                detail=detail,
            ),
        )

    def record_problem(self, audit: CallAudit, problem: Problem) -> None:
        """Record a call the proxy refused or could not complete."""
        self.record(audit, problem.status, 0, error=problem.code)
