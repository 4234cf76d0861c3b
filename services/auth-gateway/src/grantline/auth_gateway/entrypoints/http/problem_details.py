"""RFC 9457 problem details for every error the API returns, including validation errors.

Each problem has a stable `code`; messages never echo the request's values (a secret sent in the
wrong field must not come back in an error).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from psycopg import InterfaceError, OperationalError
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from grantline.auth_gateway.service.problems import Problem

log = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    502: "Bad gateway",
    503: "Service unavailable",
}


class ProblemDetails(BaseModel):
    """An error (RFC 9457); `code` is stable and meant for programs, `detail` for people."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    code: str
    detail: str | None = None


def problem_response(
    status: int, code: str, detail: str | None, *, extra: dict[str, Any] | None = None
) -> JSONResponse:
    """A problem-details response."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "code": code,
        "detail": detail,
        **(extra or {}),
    }
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="grantline"'
    if status in (429, 503) and isinstance(body.get("retry_after"), int):
        headers["Retry-After"] = str(body["retry_after"])
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


# Shared `responses=` for routes: documents the problem shape in the OpenAPI document.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ProblemDetails, "content": {PROBLEM_MEDIA_TYPE: {}}, "description": title}
    for status, title in (
        (401, "Missing or invalid credentials"),
        (403, "Not allowed for this caller"),
        (404, "Not found (or another tenant's)"),
        (422, "Invalid input"),
        (429, "Too many requests (see Retry-After)"),
        (503, "A backing service did not answer"),
    )
}


def _validation_errors(error: RequestValidationError) -> list[dict[str, Any]]:
    # Only where and what: never `input` or `ctx`, which may hold the submitted value.
    return [
        {
            "loc": [str(part) for part in item.get("loc", ())],
            "msg": str(item.get("msg", "")),
            "type": item.get("type"),
        }
        for item in error.errors()[:20]
    ]


def install_problem_handlers(app: FastAPI) -> None:
    """Turn every error into problem details."""

    async def on_problem(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(exc.status, exc.code, exc.detail, extra=exc.extra)

    async def on_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return problem_response(
            422, "validation_error", "the request is not valid", extra={"errors": _validation_errors(exc)}
        )

    async def on_http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        detail = exc.detail if isinstance(exc.detail, str) else None
        return problem_response(exc.status_code, code, detail)

    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error", extra={"error": type(exc).__name__})
        return problem_response(500, "internal", "internal error; see the service log")

    async def on_database_unavailable(_: Request, exc: Exception) -> JSONResponse:
        # Postgres restarting or unreachable: a clear, retryable answer instead of a 500.
        log.warning("database unavailable", extra={"error": type(exc).__name__})
        return problem_response(
            503, "service_unavailable", "the database is unavailable; retry shortly", extra={"retry_after": 1}
        )

    app.add_exception_handler(OperationalError, on_database_unavailable)
    app.add_exception_handler(InterfaceError, on_database_unavailable)
    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
