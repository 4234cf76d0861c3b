"""Error replies: request/reply failures are replies, not exceptions (DESIGN section 3)."""

from enum import StrEnum

from pydantic import Field

from grantline.common.contract.envelope import Message


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
    INTERNAL = "internal"


class ErrorDetail(Message):
    code: ErrorCode
    message: str = Field(max_length=2000)


class ErrorReply(Message):
    """``{"error": {"code": ..., "message": ...}}``."""

    error: ErrorDetail

    @classmethod
    def of(cls, code: ErrorCode, message: str) -> "ErrorReply":
        """Build an error reply."""
        return cls(error=ErrorDetail(code=code, message=message))
