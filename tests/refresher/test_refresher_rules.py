"""Unit tests of the refresher's pure rules: due times, event application, retries, the breaker."""

import uuid
from datetime import UTC, datetime, timedelta

from grantline.contract.connections import (
    ConnectionGranted,
    ConnectionRevoked,
    ReauthRequired,
    TokenRefreshed,
)
from grantline.contract.errors import ErrorCode, ErrorDetail, ErrorReply
from grantline.contract.vault import RefreshReply
from grantline.refresher.domain.circuit_breaker import CircuitBreaker
from grantline.refresher.domain.outcomes import OutcomeKind, RetryPolicy, classify_reply, next_retry_at
from grantline.refresher.domain.schedule import SchedulePolicy, apply_event, due_time

T0 = datetime(2030, 1, 1, tzinfo=UTC)
POLICY = SchedulePolicy(
    margin=timedelta(minutes=5), jitter=timedelta(minutes=2), warning_window=timedelta(days=7)
)


def granted(at: datetime = T0, expires_in: float | None = 3600, **fields: object) -> ConnectionGranted:
    expires_at = at + timedelta(seconds=expires_in) if expires_in is not None else None
    return ConnectionGranted(
        tenant_id="t",
        connection_id="c1",
        owner="user:u",
        provider="sandbox",
        occurred_at=at,
        expires_at=expires_at,
        **fields,  # type: ignore[arg-type]
    )


def test_due_time_is_before_expiry_by_the_margin_and_a_stable_jitter() -> None:
    expires = T0 + timedelta(hours=1)
    due = due_time("c1", "sandbox", T0, expires, POLICY)
    assert expires - timedelta(minutes=7) <= due <= expires - timedelta(minutes=5)
    assert due == due_time("c1", "sandbox", T0, expires, POLICY)


def test_tokens_issued_together_spread_out() -> None:
    expires = T0 + timedelta(hours=1)
    dues = {due_time(f"c{i}", "sandbox", T0, expires, POLICY) for i in range(200)}
    assert len(dues) > 150
    assert max(dues) - min(dues) > timedelta(seconds=90)


def test_short_tokens_are_refreshed_halfway_not_in_a_loop() -> None:
    due = due_time("c1", "sandbox", T0, T0 + timedelta(seconds=60), POLICY)
    assert T0 + timedelta(seconds=24) <= due <= T0 + timedelta(seconds=30)


def test_provider_margin_overrides_the_default() -> None:
    policy = SchedulePolicy(
        margin=timedelta(minutes=5), provider_margins={"slack": timedelta(minutes=30)}, jitter=timedelta(0)
    )
    expires = T0 + timedelta(hours=12)
    assert due_time("c1", "slack", T0, expires, policy) == expires - timedelta(minutes=30)


def test_grant_schedules_and_non_expiring_or_unrefreshable_grants_do_not() -> None:
    entry = apply_event(None, granted(), POLICY)
    assert entry is not None and entry.state == "scheduled" and entry.next_attempt_at == entry.due_at
    assert apply_event(None, granted(expires_in=None), POLICY).state == "unscheduled"  # type: ignore[union-attr]
    assert apply_event(None, granted(refreshable=False), POLICY).state == "unscheduled"  # type: ignore[union-attr]


def test_older_event_never_overwrites_newer_state() -> None:
    newer = TokenRefreshed(
        tenant_id="t",
        connection_id="c1",
        owner="user:u",
        provider="sandbox",
        occurred_at=T0 + timedelta(minutes=50),
        expires_at=T0 + timedelta(minutes=110),
    )
    entry = apply_event(None, newer, POLICY)
    assert apply_event(entry, granted(), POLICY) is None
    assert apply_event(entry, newer, POLICY) is None  # the same event again changes nothing


def test_revocation_is_a_tombstone_that_a_late_older_grant_cannot_lift() -> None:
    entry = apply_event(None, granted(), POLICY)
    revoked = ConnectionRevoked(
        tenant_id="t",
        connection_id="c1",
        owner="user:u",
        provider="sandbox",
        occurred_at=T0 + timedelta(minutes=1),
        reason="user",
    )
    ended = apply_event(entry, revoked, POLICY)
    assert ended is not None and ended.state == "ended" and ended.next_attempt_at is None
    assert apply_event(ended, granted(at=T0 + timedelta(seconds=30)), POLICY) is None
    regranted = apply_event(ended, granted(at=T0 + timedelta(minutes=2), reauthorized=True), POLICY)
    assert regranted is not None and regranted.state == "scheduled"


def test_reauth_required_ends_the_schedule() -> None:
    entry = apply_event(None, granted(), POLICY)
    event = ReauthRequired(
        tenant_id="t",
        connection_id="c1",
        owner="user:u",
        provider="sandbox",
        occurred_at=T0 + timedelta(minutes=1),
        reason="invalid_grant",
    )
    assert apply_event(entry, event, POLICY).state == "ended"  # type: ignore[union-attr]


def test_hard_expiry_arms_one_warning_per_expiry() -> None:
    hard = T0 + timedelta(days=90)
    entry = apply_event(None, granted(refresh_token_expires_at=hard), POLICY)
    assert entry is not None and entry.warn_at == hard - timedelta(days=7)
    from dataclasses import replace

    warned = replace(entry, warn_at=None, warned_expiry_at=hard)
    same = TokenRefreshed(
        tenant_id="t",
        connection_id="c1",
        owner="user:u",
        provider="sandbox",
        occurred_at=T0 + timedelta(hours=1),
        expires_at=T0 + timedelta(hours=2),
    )
    kept = apply_event(warned, same, POLICY)
    assert kept is not None and kept.refresh_token_expires_at == hard and kept.warn_at is None
    rotated = TokenRefreshed(
        tenant_id="t",
        connection_id="c1",
        owner="user:u",
        provider="sandbox",
        occurred_at=T0 + timedelta(hours=2),
        expires_at=T0 + timedelta(hours=3),
        refresh_token_rotated=True,
        refresh_token_expires_at=hard + timedelta(days=1),
    )
    rearmed = apply_event(kept, rotated, POLICY)
    assert rearmed is not None and rearmed.warn_at == hard + timedelta(days=1) - timedelta(days=7)


def test_replies_are_classified() -> None:
    ok = classify_reply(RefreshReply(connection_id="c1", expires_at=T0, refreshed=True))
    assert ok.kind is OutcomeKind.REFRESHED and ok.expires_at == T0
    assert (
        classify_reply(RefreshReply(connection_id="c1", expires_at=T0, refreshed=False)).kind
        is OutcomeKind.ALREADY_FRESH
    )
    for code in (ErrorCode.REAUTH_REQUIRED, ErrorCode.REVOKED, ErrorCode.NOT_CONNECTED):
        assert classify_reply(ErrorReply.of(code, "x")).kind is OutcomeKind.ENDED
    limited = classify_reply(
        ErrorReply(
            error=ErrorDetail(code=ErrorCode.PROVIDER_UNAVAILABLE, message="429", retry_after_seconds=30)
        )
    )
    assert limited.kind is OutcomeKind.RETRY and limited.retry_after_seconds == 30


def test_backoff_grows_is_capped_and_respects_retry_after() -> None:
    policy = RetryPolicy(base_seconds=2, max_seconds=60)
    delays = [policy.delay(n, 1.0) for n in range(1, 10)]
    assert delays[:5] == [2, 4, 8, 16, 32] and max(delays) == 60
    assert policy.delay(3, 0.0) == 4  # jitter keeps at least half
    at = next_retry_at(T0, 1, None, 45, policy, 0.5)
    assert at == T0 + timedelta(seconds=45)


def test_a_retry_that_would_overshoot_expiry_gets_a_last_chance_before_it() -> None:
    policy = RetryPolicy(base_seconds=2, max_seconds=300)
    expires = T0 + timedelta(seconds=40)
    at = next_retry_at(T0, 6, expires, None, policy, 1.0)  # backoff 64 s would pass expiry
    assert at == expires - timedelta(seconds=5)


def test_breaker_opens_after_consecutive_failures_and_probes_once() -> None:
    breaker = CircuitBreaker(failures_to_open=3, open_seconds=10)
    for _ in range(3):
        assert breaker.allows(0)
        breaker.record_failure(0)
    assert not breaker.allows(5)
    assert breaker.allows(11) and not breaker.allows(11)  # one probe at a time
    breaker.record_failure(11)  # the probe failed: open for longer
    assert not breaker.allows(25) and breaker.allows(32)
    breaker.record_success()
    assert breaker.allows(32) and breaker.allows(32)


def test_event_ids_break_ties_between_events_of_the_same_instant() -> None:
    a = granted()
    b = a.model_copy(update={"id": uuid.UUID(int=a.id.int ^ 1)})
    first, second = sorted([a, b], key=lambda e: e.id)
    entry = apply_event(None, second, POLICY)
    assert apply_event(entry, first, POLICY) is None
