"""When a failed delivery is tried again: exponential backoff with a cap, then it is given up."""

from __future__ import annotations

from datetime import datetime, timedelta

# After the first attempt fails: 5 s, 30 s, 2 min, 10 min, 30 min, then hourly, in all ~6 hours
# (a receiver down for a deploy or an afternoon still gets everything, in order of retry).
_DELAYS = (5, 30, 120, 600, 1800, 3600)


def next_attempt(
    attempts: int, now: datetime, *, max_attempts: int, base_seconds: float = 1.0
) -> datetime | None:
    """When to try again after ``attempts`` failed attempts, or None when the delivery has failed for
    good. ``base_seconds`` scales the schedule (tests make it tiny)."""
    if attempts >= max_attempts:
        return None
    delay = _DELAYS[min(attempts - 1, len(_DELAYS) - 1)] * base_seconds
    return now + timedelta(seconds=delay)
