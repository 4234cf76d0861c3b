"""A per-provider circuit breaker: a provider that keeps failing is left alone for a while."""

from dataclasses import dataclass


@dataclass
class CircuitBreaker:
    """Closed until ``failures_to_open`` consecutive failures; then open for ``open_seconds``
    (doubling on each failed probe, up to ``max_open_seconds``); then one probe at a time."""

    failures_to_open: int = 10
    open_seconds: float = 15.0
    max_open_seconds: float = 300.0
    consecutive_failures: int = 0
    opened_until: float | None = None
    current_open_seconds: float = 0.0
    probing: bool = False

    def allows(self, now: float) -> bool:
        """Whether a call may go to the provider now (the first call after opening is the probe)."""
        if self.opened_until is None:
            return True
        if now < self.opened_until or self.probing:
            return False
        self.probing = True
        return True

    def is_open(self, now: float) -> bool:
        """Whether calls are being held back (open, or half-open with a probe in flight)."""
        return self.opened_until is not None and (now < self.opened_until or self.probing)

    def record_success(self) -> None:
        """A call succeeded (or failed for a reason that is not the provider's): close."""
        self.consecutive_failures = 0
        self.opened_until = None
        self.current_open_seconds = 0.0
        self.probing = False

    def record_failure(self, now: float) -> None:
        """A call failed transiently: count it, and open (or re-open for longer) when due."""
        self.consecutive_failures += 1
        if self.probing or (self.opened_until is None and self.consecutive_failures >= self.failures_to_open):
            self.current_open_seconds = min(
                self.max_open_seconds, (self.current_open_seconds * 2) or self.open_seconds
            )
            self.opened_until = now + self.current_open_seconds
            self.probing = False
