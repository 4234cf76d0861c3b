"""What a durable consumer decides about a message before and after its handler runs.

Shared by ``BatchedConsumer`` (every service's JetStream consumers) and the request responders: a
message that is not a valid event is terminated with a logged reason that names fields, never their
values, so it never blocks the consumer; one that arrives on a subject its content does not belong
to is refused the same way; a handler that fails is retried with a growing delay, so a database
restart loses nothing.
"""

from pydantic import ValidationError

from grantline.contract.envelope import Event

MAX_RETRY_DELAY_SECONDS = 30.0


def validation_summary(error: ValidationError) -> str:
    """A reason for rejecting a message that names fields, never their (possibly secret) values."""
    parts = [f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['type']}" for e in error.errors()[:5]]
    return "; ".join(parts)


def misplaced(event: Event, subject: str) -> str | None:
    """Why ``event`` may not be taken from ``subject`` (None when it may).

    An event's subject follows from its type (and, for tenant-scoped events, its tenant), so one that
    arrives elsewhere was published by someone its subject's permissions did not cover for that
    content: a runner of tenant A writing tenant B's id into a ``runs.requested.A`` body, say.
    """
    expected = event.subject()
    if expected == subject:
        return None
    return f"an event for {expected} arrived on {subject}"


def retry_delay(num_delivered: int) -> float:
    """Exponential backoff for redelivery of a failed message, capped."""
    return min(MAX_RETRY_DELAY_SECONDS, 0.1 * (2 ** min(num_delivered, 10)))
