"""The one exception use cases raise: it becomes an RFC 9457 problem at the HTTP edge."""

from __future__ import annotations

from typing import Any

from grantline.contract.errors import ErrorCode, ErrorReply

# How another service's error reply reads over HTTP.
_STATUS_OF_ERROR: dict[str, int] = {
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.NOT_CONNECTED: 404,
    ErrorCode.INVALID_REQUEST: 422,
    ErrorCode.MISSING_SCOPES: 422,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.CONFLICT: 409,
    ErrorCode.WRONG_ACCOUNT: 409,
    ErrorCode.REVOKED: 409,
    ErrorCode.REAUTH_REQUIRED: 409,
    ErrorCode.PROVIDER_UNAVAILABLE: 502,
    ErrorCode.INTERNAL: 502,
}


class Problem(Exception):
    """A request that cannot be served: HTTP status, a stable code and a message safe to show."""

    def __init__(self, status: int, code: str, detail: str, *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.extra = extra or {}


def not_found(what: str) -> Problem:
    """The 404 every missing or foreign resource gets (another tenant's things do not exist)."""
    return Problem(404, "not_found", f"{what} not found")


def invalid(detail: str, **extra: Any) -> Problem:
    """A 422 for input the use case refuses."""
    return Problem(422, "invalid_request", detail, extra=extra)


def provider_disabled(provider: str) -> Problem:
    """A 422 for a provider switched off by the operator (catalogue) or by the tenant."""
    return Problem(422, "provider_disabled", f"provider {provider!r} is disabled for this tenant")


def from_error_reply(reply: ErrorReply) -> Problem:
    """The problem for another service's error reply (its message is already free of secrets)."""
    code = reply.error.code
    return Problem(_STATUS_OF_ERROR.get(code, 502), code.value, reply.error.message)


def service_unavailable(service: str) -> Problem:
    """A 503 for a backing service that did not answer."""
    return Problem(503, "service_unavailable", f"the {service} service did not answer; try again shortly")
