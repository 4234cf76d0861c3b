"""The filters of an audit query, validated before they reach a repository."""

import re
from datetime import UTC, datetime
from typing import Annotated, Self

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from grantline.contract.audit import ACTION_PATTERN

# An exact action (the shape AuditRecord.action has in the contract) or, as NATS subjects allow, a
# family of actions: "connection.*" (one or more leading words), or "*" for all.
_ACTION_BODY = ACTION_PATTERN.removeprefix("^").removesuffix("$")
_FAMILY = r"[a-z_]+(\.[a-z_]+)*\.\*"
ACTION_FILTER_PATTERN = rf"^(\*|{_ACTION_BODY}|{_FAMILY})$"
_ACTION_FILTER_RE = re.compile(ACTION_FILTER_PATTERN)

# The actions the services record (issue 8). A query may name others that match ACTION_PATTERN: the
# vocabulary grows with the services, and a filter on an action nobody records just finds nothing.
KNOWN_ACTIONS = frozenset(
    {
        "connection.initiated",
        "connection.granted",
        "connection.reauthorized",
        "connection.exchanged",
        "connection.revoked",
        "token.resolved",
        "token.refreshed",
        "token.refresh_failed",
        "webhook.received",
        "provider_app.changed",
        "api_key.created",
        "api_key.revoked",
        "key.rotated",
    }
)

MAX_LIMIT = 500
DEFAULT_LIMIT = 100

Id = Annotated[str, StringConstraints(min_length=1, max_length=200)]


def action_matches(action_filter: str, action: str) -> bool:
    """True when `action` is selected by `action_filter` (an exact action, "family.*" or "*")."""
    if action_filter == "*":
        return True
    if action_filter.endswith(".*"):
        return action.startswith(action_filter[:-1])
    return action == action_filter


class AuditQuery(BaseModel):
    """One page of a tenant's audit records, newest first, narrowed by the given filters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant_id: str = Field(min_length=1, max_length=128)
    user_id: Id | None = None
    connection_id: Id | None = None
    provider: Id | None = None
    app_id: Id | None = None
    run_id: Id | None = None
    action: str | None = Field(default=None, max_length=100)
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    cursor: str | None = Field(default=None, min_length=1, max_length=1024)
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)

    @field_validator("tenant_id", "user_id", "connection_id", "provider", "app_id", "run_id")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        # Blank ids are a caller's bug; matching them would silently return nothing.
        if value is not None and not value.strip():
            raise ValueError("ids must not be blank")
        return value

    @field_validator("action")
    @classmethod
    def _action_shape(cls, value: str | None) -> str | None:
        if value is not None and not _ACTION_FILTER_RE.match(value):
            raise ValueError('action must be a dotted lower-case action, "family.*" or "*"')
        return value

    @field_validator("since", "until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return value.astimezone(UTC) if value is not None else None

    @model_validator(mode="after")
    def _range_in_order(self) -> Self:
        if self.since is not None and self.until is not None and self.since > self.until:
            raise ValueError("since must not be after until")
        return self

    @property
    def action_prefix(self) -> str | None:
        """For a family filter, the prefix every selected action starts with ("" for "*"); else None."""
        if self.action == "*":
            return ""
        if self.action is not None and self.action.endswith(".*"):
            return self.action[:-1]
        return None
