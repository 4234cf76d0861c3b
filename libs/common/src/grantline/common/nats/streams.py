"""The JetStream streams of DESIGN section 3 (declared by `grantline migrate`, see declaration.py)."""

from dataclasses import dataclass

from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

DAY_SECONDS = 24 * 3600
# JetStream drops a message whose Nats-Msg-Id it saw within this window; the outbox relay relies on it.
DUPLICATE_WINDOW_SECONDS = 10 * 60


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    max_age_days: int

    def config(self, replicas: int = 1) -> StreamConfig:
        """The JetStream configuration of this stream."""
        return StreamConfig(
            name=self.name,
            subjects=list(self.subjects),
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


def stream_specs(audit_retention_days: int = 365) -> list[StreamSpec]:
    """The three streams, with the AUDIT retention as configured."""
    return [CONNECTIONS, RUNS, StreamSpec(AUDIT.name, AUDIT.subjects, audit_retention_days)]


def stream_for_subject(subject: str) -> StreamSpec:
    """The stream that stores ``subject``."""
    for spec in (CONNECTIONS, RUNS, AUDIT):
        if subject.startswith(spec.subjects[0].split(".", 1)[0] + ".") and subject.count(".") >= (
            spec.subjects[0].count(".")
        ):
            return spec
    raise ValueError(f"no stream stores subject {subject!r}")
