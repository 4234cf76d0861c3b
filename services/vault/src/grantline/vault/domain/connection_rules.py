"""Pure rules about connections: scopes, expiry, which connection serves a resolve."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from grantline.providers.definition import ProviderDefinition

WORKSPACE_OWNER = "workspace"
# Why a connection needs re-authorization when a refresh's answer was lost and its token may be spent.
REFRESH_OUTCOME_UNKNOWN = "refresh_outcome_unknown"
# A retry inside a provider's grace period must reach it before the period ends.
_GRACE_SAFETY_SECONDS = 2.0


class ConnectionStatus(StrEnum):
    """Lifecycle of a connection (DESIGN section 1)."""

    PENDING = "pending"
    ACTIVE = "active"
    REAUTH_REQUIRED = "reauth_required"
    REVOKED = "revoked"


def user_owner(user_id: str) -> str:
    """The owner string of a user's connection."""
    return f"user:{user_id}"


def union_scopes(*scope_lists: Iterable[str]) -> list[str]:
    """Every scope of every list, first occurrence order (re-authorization adds, never removes)."""
    seen: dict[str, None] = {}
    for scopes in scope_lists:
        for scope in scopes:
            if scope:
                seen.setdefault(scope, None)
    return list(seen)


def missing_scopes(granted: Sequence[str], requested: Sequence[str]) -> list[str]:
    """Requested scopes the grant does not include."""
    have = set(granted)
    return [scope for scope in requested if scope not in have]


def needs_refresh(expires_at: datetime | None, now: datetime, margin_seconds: float) -> bool:
    """True when an expiring token is expired or within the margin of expiry (None never expires)."""
    return expires_at is not None and expires_at - timedelta(seconds=margin_seconds) <= now


def is_expired(expires_at: datetime | None, now: datetime) -> bool:
    """True when the token's expiry has passed."""
    return expires_at is not None and expires_at <= now


def choose_for_resolve(
    own: object | None, workspace: object | None, *, fallback_allowed: bool
) -> object | None:
    """The user's own default connection, else the workspace one when the provider app allows it."""
    if own is not None:
        return own
    if workspace is not None and fallback_allowed:
        return workspace
    return None


def may_present_again(definition: ProviderDefinition, started_at: datetime) -> bool:
    """Whether a refresh token whose last use has an unknown outcome may be presented again: it does
    not rotate, or the provider's reuse grace period (counted from that use) has time left."""
    policy = definition.refresh
    if not policy.rotating:
        return True
    if policy.rotation_grace_seconds is None:
        return False
    elapsed = (datetime.now(UTC) - started_at).total_seconds()
    return elapsed + _GRACE_SAFETY_SECONDS < policy.rotation_grace_seconds
