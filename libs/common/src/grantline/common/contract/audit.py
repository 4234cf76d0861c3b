"""Audit records (the ``AUDIT`` stream, ``audit.<action>``) and the audit query messages."""

import re
from datetime import datetime
from typing import Any, ClassVar, Literal

from pydantic import Field

from grantline.common.contract.envelope import Event, Message

# Actions are dotted lower-case words: "connection.granted", "token.resolved", "key.rotated", ...
ACTION_PATTERN = r"^[a-z_]+(\.[a-z_]+)*$"
_ACTION_RE = re.compile(ACTION_PATTERN)

Outcome = Literal["success", "failure", "denied"]


class AuditRecord(Event):
    """What a service did on a connection. Never holds a token; at most an HMAC fingerprint."""

    SUBJECT: ClassVar[str] = "audit"
    type: Literal["audit.record"] = "audit.record"
    actor: str = Field(min_length=1, max_length=200)
    action: str = Field(pattern=ACTION_PATTERN, max_length=100)
    connection_id: str | None = None
    provider: str | None = None
    user_id: str | None = None
    app_id: str | None = None
    run_id: str | None = None
    tool: str | None = None
    outcome: Outcome = "success"
    detail: dict[str, Any] = {}

    def subject(self) -> str:
        """``audit.<action>``, so consumers can filter by action with subject wildcards."""
        assert _ACTION_RE.match(self.action)
        return f"audit.{self.action}"


class AuditQueryRequest(Message):
    tenant_id: str
    user_id: str | None = None
    connection_id: str | None = None
    provider: str | None = None
    app_id: str | None = None
    run_id: str | None = None
    action: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    cursor: str | None = None
    limit: int = Field(default=100, ge=1, le=500)


class StoredAuditRecord(Message):
    seq: int
    record: AuditRecord
    received_at: datetime
    hash: str


class AuditQueryReply(Message):
    records: list[StoredAuditRecord]
    next_cursor: str | None = None
