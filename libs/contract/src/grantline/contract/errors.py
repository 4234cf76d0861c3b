"""Error replies: request/reply failures are replies, not exceptions (DESIGN section 3)."""

from enum import StrEnum
from typing import Any

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer

from grantline.contract.envelope import Message


class ErrorCode(StrEnum):
    NOT_CONNECTED = "not_connected"
    REVOKED = "revoked"
    REAUTH_REQUIRED = "reauth_required"
    MISSING_SCOPES = "missing_scopes"
    PROVIDER_UNAVAILABLE = "provider_unavailable"
    INVALID_REQUEST = "invalid_request"
    FORBIDDEN = "forbidden"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    # The user granted as another account than the flow expected (a login hint or domain).
    WRONG_ACCOUNT = "wrong_account"
    INTERNAL = "internal"


class ErrorDetail(Message):
    code: ErrorCode
    message: str = Field(max_length=2000)
    # For provider_unavailable after a 429: how long the provider asked callers to wait. Left out of
    # the JSON when unset, so the documented shape ({"code", "message"}) is unchanged.
    retry_after_seconds: float | None = None

    @model_serializer(mode="wrap")
    def _omit_unset_retry_after(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("retry_after_seconds") is None:
            data.pop("retry_after_seconds", None)
        return data


class ErrorReply(Message):
    """``{"error": {"code": ..., "message": ...}}``."""

    error: ErrorDetail

    @classmethod
    def of(cls, code: ErrorCode, message: str) -> "ErrorReply":
        """Build an error reply."""
        return cls(error=ErrorDetail(code=code, message=message))
