"""Every durable JetStream consumer of Grantline, declared once.

``grantline migrate`` creates or updates these (with the operator's NATS identity,
``grantline.runtime.nats.declaration``); a running service only binds to the ones it owns and never
creates one. ``deploy/nats/permissions.yaml`` grants each owner INFO, MSG.NEXT and ACK on its own
consumers and nothing else (tests/deploy checks the two stay in step).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from grantline.runtime.nats.streams import AUDIT, CONNECTIONS, RUNS, StreamSpec


@dataclass(frozen=True)
class ConsumerSpec:
    """One durable pull consumer: its stream, name, filter and delivery rules, and the user that reads it."""

    owner: str
    stream: StreamSpec
    durable: str
    filter_subject: str
    ack_wait_seconds: float = 30.0
    # -1: redeliver until handled; a handler that keeps failing is retried with backoff, never dropped.
    max_deliver: int = -1
    # None: the server's default (1,000 unacknowledged messages in flight).
    max_ack_pending: int | None = None

    def config(self) -> ConsumerConfig:
        """The JetStream configuration of this consumer (explicit acks, every message from the start)."""
        return ConsumerConfig(
            durable_name=self.durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.ack_wait_seconds,
            max_deliver=self.max_deliver,
            max_ack_pending=self.max_ack_pending,
            filter_subject=self.filter_subject,
        )

    def missing_message(self) -> str:
        """What a service that needs this consumer says while it does not exist."""
        return (
            f"JetStream consumer {self.durable!r} on stream {self.stream.name} does not exist: run "
            "`grantline migrate` (services never create streams or consumers)"
        )


REFRESHER_SCHEDULE = ConsumerSpec("refresher", CONNECTIONS, "refresher-schedule", "connections.>")
SATISFACTION_RUNS_REQUESTED = ConsumerSpec(
    "satisfaction", RUNS, "satisfaction-runs-requested", "runs.requested.*"
)
SATISFACTION_CONNECTIONS = ConsumerSpec(
    "satisfaction", CONNECTIONS, "satisfaction-connections", "connections.>"
)
SATISFACTION_RUNS_FINISHED = ConsumerSpec(
    "satisfaction", RUNS, "satisfaction-runs-finished", "runs.finished.*"
)
# The vault refuses a finished run's grant: it records every runs.finished.<tenant>.
VAULT_RUNS_FINISHED = ConsumerSpec("vault", RUNS, "vault-runs-finished", "runs.finished.*")
# audit.token.resolved tells satisfaction which in-flight runs used which connection (for revocation).
SATISFACTION_TOKEN_RESOLVED = ConsumerSpec(
    "satisfaction", AUDIT, "satisfaction-token-resolved", "audit.token.resolved"
)
AUDIT_LEDGER = ConsumerSpec(
    "audit",
    AUDIT,
    "audit-ledger",
    AUDIT.subjects[0],
    # The ledger pulls a few batches ahead (audit_stream.py); JetStream stops delivering beyond this
    # many unacknowledged records until acks arrive.
    ack_wait_seconds=60.0,
    max_ack_pending=20_000,
)
# The notifier tells tenants' webhook endpoints about connection events and refresh failures.
NOTIFIER_CONNECTIONS = ConsumerSpec("notifier", CONNECTIONS, "notifier-connections", "connections.>")
NOTIFIER_REFRESH_FAILED = ConsumerSpec(
    "notifier", AUDIT, "notifier-refresh-failed", "audit.token.refresh_failed"
)

DURABLE_CONSUMERS: tuple[ConsumerSpec, ...] = (
    REFRESHER_SCHEDULE,
    SATISFACTION_RUNS_REQUESTED,
    SATISFACTION_CONNECTIONS,
    SATISFACTION_RUNS_FINISHED,
    SATISFACTION_TOKEN_RESOLVED,
    VAULT_RUNS_FINISHED,
    AUDIT_LEDGER,
    NOTIFIER_CONNECTIONS,
    NOTIFIER_REFRESH_FAILED,
)


def consumers_of(owner: str, consumers: tuple[ConsumerSpec, ...] = DURABLE_CONSUMERS) -> list[ConsumerSpec]:
    """The consumers ``owner`` (a service's NATS user) binds to."""
    return [spec for spec in consumers if spec.owner == owner]


def durable_consumers(*, audit_ingest_ack_wait_seconds: float | None = None) -> tuple[ConsumerSpec, ...]:
    """Every declared consumer, with the deployment's tuning (``grantline migrate`` settings) applied."""
    if audit_ingest_ack_wait_seconds is None:
        return DURABLE_CONSUMERS
    tuned = replace(AUDIT_LEDGER, ack_wait_seconds=audit_ingest_ack_wait_seconds)
    return tuple(tuned if spec == AUDIT_LEDGER else spec for spec in DURABLE_CONSUMERS)
