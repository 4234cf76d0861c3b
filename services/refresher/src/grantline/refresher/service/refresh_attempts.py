"""Use case: turn the outcome of a claimed refresh into the row's next state."""

from datetime import datetime, timedelta

from grantline.refresher.adapters.schedule_repository import ClaimedRefresh, OutcomeWrite
from grantline.refresher.domain.outcomes import Outcome, OutcomeKind, RetryPolicy, next_retry_at
from grantline.refresher.domain.schedule import ENDED, SCHEDULED, UNSCHEDULED, SchedulePolicy, due_time

# Ask the vault to refresh only while the token still expires no later than we believe (plus this):
# if another path refreshed it meanwhile, the vault answers "already fresh" instead of refreshing again.
EXPIRY_TOLERANCE = timedelta(seconds=1)


def refresh_condition(claim: ClaimedRefresh) -> datetime | None:
    """The ``only_if_expiring_before`` of a claimed refresh."""
    return claim.expires_at + EXPIRY_TOLERANCE if claim.expires_at is not None else None


def plan_outcome(
    claim: ClaimedRefresh,
    outcome: Outcome,
    *,
    now: datetime,
    policy: SchedulePolicy,
    retry: RetryPolicy,
    random_fraction: float,
) -> OutcomeWrite:
    """The write that records ``outcome`` on the claimed row."""
    if outcome.kind in (OutcomeKind.REFRESHED, OutcomeKind.ALREADY_FRESH):
        expires_at = outcome.expires_at
        due = (
            due_time(claim.connection_id, claim.provider, now, expires_at, policy)
            if expires_at is not None
            else None
        )
        return OutcomeWrite(
            connection_id=claim.connection_id,
            lease_token=claim.lease_token,
            state=SCHEDULED if due is not None else UNSCHEDULED,
            end_reason=None,
            expires_at=expires_at,
            due_at=due,
            next_attempt_at=due,
            reset_attempts=True,
            attempts_delta=0,
            last_error=None,
            refreshed_at=now if outcome.kind is OutcomeKind.REFRESHED else None,
            clear_warning=False,
        )
    if outcome.kind is OutcomeKind.ENDED:
        return OutcomeWrite(
            connection_id=claim.connection_id,
            lease_token=claim.lease_token,
            state=ENDED,
            end_reason=f"refresh:{outcome.reason}",
            expires_at=claim.expires_at,
            due_at=None,
            next_attempt_at=None,
            reset_attempts=True,
            attempts_delta=0,
            last_error=outcome.reason,
            refreshed_at=None,
            clear_warning=True,
        )
    at = next_retry_at(
        now, claim.attempts, claim.expires_at, outcome.retry_after_seconds, retry, random_fraction
    )
    return _keep_scheduled(claim, next_attempt_at=at, attempts_delta=0, last_error=outcome.reason)


def defer_claim(claim: ClaimedRefresh, *, until: datetime, reason: str) -> OutcomeWrite:
    """Give a claim back untried (its provider is held back); the attempt it counted is returned."""
    return _keep_scheduled(claim, next_attempt_at=until, attempts_delta=-1, last_error=f"deferred:{reason}")


def _keep_scheduled(
    claim: ClaimedRefresh, *, next_attempt_at: datetime, attempts_delta: int, last_error: str | None
) -> OutcomeWrite:
    return OutcomeWrite(
        connection_id=claim.connection_id,
        lease_token=claim.lease_token,
        state=SCHEDULED,
        end_reason=None,
        expires_at=claim.expires_at,
        due_at=claim.due_at,
        next_attempt_at=next_attempt_at,
        reset_attempts=False,
        attempts_delta=attempts_delta,
        last_error=last_error,
        refreshed_at=None,
        clear_warning=False,
    )
