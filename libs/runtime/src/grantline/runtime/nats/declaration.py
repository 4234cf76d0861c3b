"""Declaring the streams and durable consumers (``grantline migrate``), and checking them (services).

Only the operator identity may create or update streams and consumers (deploy/nats/permissions.yaml):
``grantline migrate`` calls ``declare_jetstream`` with it, and the test fixtures call the same
function. A running service calls ``undeclared`` with its own identity, which may only look them up:
until everything it needs exists it is not ready and says what to run.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, StreamConfig
from nats.js.errors import APIError, NotFoundError

from grantline.runtime.nats.consumers import DURABLE_CONSUMERS, ConsumerSpec
from grantline.runtime.nats.streams import StreamSpec, stream_specs

log = logging.getLogger(__name__)


class DeclarationError(RuntimeError):
    """JetStream refused to create or update a stream or consumer as declared."""


async def declare_streams(js: JetStreamContext, specs: Iterable[StreamSpec], *, replicas: int = 1) -> None:
    """Create each stream, or bring an existing one to the declared configuration."""
    for spec in specs:
        wanted = spec.config(replicas)
        try:
            info = await js.stream_info(spec.name)
        except NotFoundError:
            await js.add_stream(wanted)
            log.info("stream created", extra={"stream": spec.name})
            continue
        current = info.config
        if (
            sorted(current.subjects or []) != sorted(wanted.subjects or [])
            or _sources(current) != _sources(wanted)
            or current.max_age != wanted.max_age
            or current.duplicate_window != wanted.duplicate_window
        ):
            # Replicas and storage cannot change in place; only the mutable parts are updated.
            wanted.num_replicas = current.num_replicas
            wanted.storage = current.storage
            await js.update_stream(wanted)
            log.info("stream updated", extra={"stream": spec.name})


def _sources(config: StreamConfig) -> list[tuple[str, str]]:
    return sorted((source.name, source.filter_subject or "") for source in config.sources or [])


def _differences(current: ConsumerConfig, spec: ConsumerSpec) -> list[str]:
    wanted = spec.config()
    fields = ["filter_subject", "ack_policy", "ack_wait", "max_deliver"]
    if wanted.max_ack_pending is not None:
        fields.append("max_ack_pending")
    return [name for name in fields if getattr(current, name) != getattr(wanted, name)]


async def declare_consumers(js: JetStreamContext, specs: Iterable[ConsumerSpec]) -> None:
    """Create each durable consumer, or bring an existing one to the declared configuration."""
    for spec in specs:
        try:
            info = await js.consumer_info(spec.stream.name, spec.durable)
        except NotFoundError:
            await js.add_consumer(spec.stream.name, spec.config())
            log.info("consumer created", extra={"stream": spec.stream.name, "consumer": spec.durable})
            continue
        changed = _differences(info.config, spec)
        if not changed:
            continue
        try:
            # Creating a durable that exists updates it, for the settings JetStream can change in place.
            await js.add_consumer(spec.stream.name, spec.config())
        except APIError as error:
            raise DeclarationError(
                f"consumer {spec.durable!r} on {spec.stream.name} differs from its declaration in "
                f"{', '.join(changed)} and JetStream cannot update it in place ({error.description}); "
                "see docs/nats-security.md, 'Changing a consumer'"
            ) from None
        log.info(
            "consumer updated",
            extra={"stream": spec.stream.name, "consumer": spec.durable, "changed": ",".join(changed)},
        )


async def declare_jetstream(
    js: JetStreamContext,
    *,
    audit_retention_days: int = 365,
    replicas: int = 1,
    consumers: Sequence[ConsumerSpec] = DURABLE_CONSUMERS,
) -> None:
    """Declare every stream, then every durable consumer (``grantline migrate``; needs the operator)."""
    await declare_streams(js, stream_specs(audit_retention_days), replicas=replicas)
    await declare_consumers(js, consumers)


async def undeclared(
    js: JetStreamContext, streams: Iterable[StreamSpec], consumers: Iterable[ConsumerSpec]
) -> list[str]:
    """What is missing (or declared differently) of ``streams`` and ``consumers``; empty when all is there."""
    problems: list[str] = []
    for stream in streams:
        try:
            await js.stream_info(stream.name)
        except NotFoundError:
            problems.append(
                f"JetStream stream {stream.name} does not exist: run `grantline migrate` "
                "(services never create streams or consumers)"
            )
    for spec in consumers:
        try:
            info = await js.consumer_info(spec.stream.name, spec.durable)
        except NotFoundError:
            problems.append(spec.missing_message())
            continue
        if info.config.filter_subject != spec.filter_subject:
            problems.append(
                f"JetStream consumer {spec.durable!r} filters {info.config.filter_subject!r}, declared "
                f"{spec.filter_subject!r}: run `grantline migrate`"
            )
    return problems
