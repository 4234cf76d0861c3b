"""The JetStream streams of DESIGN section 3 (declared by `grantline migrate`, see declaration.py)."""

from dataclasses import dataclass

from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig, StreamSource

from grantline.contract.runner_identities import RUNNER_OUTCOMES_STREAM, runner_outcome_subjects

DAY_SECONDS = 24 * 3600
# JetStream drops a message whose Nats-Msg-Id it saw within this window; the outbox relay relies on it.
DUPLICATE_WINDOW_SECONDS = 10 * 60


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    max_age_days: int
    # A stream that copies messages of another stream instead of capturing subjects of its own:
    # (stream, filter subject) pairs.
    sources: tuple[tuple[str, str], ...] = ()

    def config(self, replicas: int = 1) -> StreamConfig:
        """The JetStream configuration of this stream."""
        return StreamConfig(
            name=self.name,
            subjects=list(self.subjects),
            sources=[StreamSource(name=stream, filter_subject=subject) for stream, subject in self.sources]
            or None,
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_age=float(self.max_age_days * DAY_SECONDS),
            duplicate_window=float(DUPLICATE_WINDOW_SECONDS),
            num_replicas=replicas,
        )


CONNECTIONS = StreamSpec("CONNECTIONS", ("connections.>",), 30)
RUNS = StreamSpec("RUNS", ("runs.>",), 7)
# Audit records travel on ``audit.<family>.<verb>`` (at least three tokens), so the stream captures
# ``audit.*.>``: the ``audit.query`` request subject (two tokens) stays plain request/reply instead of
# being stored in the log stream and acknowledged by JetStream ahead of the audit service's reply.
AUDIT = StreamSpec("AUDIT", ("audit.*.>",), 365)
# The outcomes runners follow (runs.admitted/held/connection_revoked.<tenant>), copied from RUNS so that
# each runner's durable consumer lives on a stream of their own: runner-auth, which declares those
# consumers, may create and delete consumers here and nowhere else (docs/runners.md, "Durability").
# A day is plenty: a runner away longer has no run left in flight (grants live an hour by default).
RUNNER_OUTCOMES = StreamSpec(
    RUNNER_OUTCOMES_STREAM,
    (),
    1,
    sources=tuple((RUNS.name, subject) for subject in runner_outcome_subjects(None)),
)


def stream_specs(audit_retention_days: int = 365) -> list[StreamSpec]:
    """The four streams, with the AUDIT retention as configured (RUNS before the stream sourcing it)."""
    return [
        CONNECTIONS,
        RUNS,
        StreamSpec(AUDIT.name, AUDIT.subjects, audit_retention_days),
        RUNNER_OUTCOMES,
    ]


def stream_for_subject(subject: str) -> StreamSpec:
    """The stream that stores ``subject``."""
    for spec in (CONNECTIONS, RUNS, AUDIT):
        if subject.startswith(spec.subjects[0].split(".", 1)[0] + ".") and subject.count(".") >= (
            spec.subjects[0].count(".")
        ):
            return spec
    raise ValueError(f"no stream stores subject {subject!r}")
