"""What a refresh attempt's answer means for the schedule, and when to try again after a failure."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.contract.vault import RefreshReply

# Codes after which refreshing again cannot help: the schedule ends (no retry storm).
FINAL_CODES = frozenset(
    {ErrorCode.REAUTH_REQUIRED, ErrorCode.REVOKED, ErrorCode.NOT_CONNECTED, ErrorCode.NOT_FOUND}
)
# Retry this long before expiry at the latest, when the backoff would overshoot it.
LAST_CHANCE_BEFORE_EXPIRY = timedelta(seconds=5)


class OutcomeKind(StrEnum):
    REFRESHED = "refreshed"
    ALREADY_FRESH = "already_fresh"
    ENDED = "ended"
    RETRY = "retry"


@dataclass(frozen=True)
class Outcome:
    """The classified answer to one refresh attempt."""

    kind: OutcomeKind
    # The failure reason (an error code, "timeout", "no_responders"), for metrics and last_error.
    reason: str | None = None
    expires_at: datetime | None = None
    retry_after_seconds: float | None = None

    @property
    def transient(self) -> bool:
        """Whether this is a failure worth retrying (and counting against the provider's breaker)."""
        return self.kind is OutcomeKind.RETRY


def classify_reply(reply: RefreshReply | ErrorReply) -> Outcome:
    """Classify the vault's reply to ``vault.refresh``."""
    if isinstance(reply, RefreshReply):
        kind = OutcomeKind.REFRESHED if reply.refreshed else OutcomeKind.ALREADY_FRESH
        return Outcome(kind, expires_at=reply.expires_at)
    code = reply.error.code
    if code in FINAL_CODES:
        return Outcome(OutcomeKind.ENDED, reason=code.value)
    retry_after = getattr(reply.error, "retry_after_seconds", None)
    return Outcome(OutcomeKind.RETRY, reason=code.value, retry_after_seconds=retry_after)


def unreachable(reason: str) -> Outcome:
    """The vault did not answer (timeout, no responders): retry."""
    return Outcome(OutcomeKind.RETRY, reason=reason)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded by ``max_seconds``."""

    base_seconds: float = 2.0
    max_seconds: float = 300.0

    def delay(self, attempts: int, random_fraction: float) -> float:
        """Backoff before attempt ``attempts + 1``: base * 2^(attempts-1), capped, jittered to 50-100%."""
        exponent = min(max(attempts - 1, 0), 30)
        return min(self.max_seconds, self.base_seconds * 2**exponent) * (0.5 + random_fraction / 2)


def next_retry_at(
    now: datetime,
    attempts: int,
    expires_at: datetime | None,
    retry_after_seconds: float | None,
    policy: RetryPolicy,
    random_fraction: float,
) -> datetime:
    """When to try again after ``attempts`` failed attempts.

    The provider's Retry-After is a floor. When the backoff would overshoot the token's expiry and
    there is still room, one last attempt is placed just before expiry instead.
    """
    delay = policy.delay(attempts, random_fraction)
    if retry_after_seconds is not None:
        delay = max(delay, retry_after_seconds)
    at = now + timedelta(seconds=delay)
    if expires_at is not None:
        last_chance = expires_at - LAST_CHANCE_BEFORE_EXPIRY
        floor = now + timedelta(seconds=max(policy.base_seconds, retry_after_seconds or 0.0))
        if at > last_chance >= floor:
            at = last_chance
    return at
