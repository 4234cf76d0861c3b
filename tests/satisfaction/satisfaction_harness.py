"""Helpers for satisfaction integration tests: the service in-process, publishing as other services do."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

from nats.aio.client import Client
from nats.aio.msg import Msg

from grantline.contract import (
    AuditRecord,
    ConnectionGranted,
    ConnectionRevoked,
    Event,
    RunAdmitted,
    RunConnectionRevoked,
    RunHeld,
    RunRequested,
    decode_event,
    encode_message,
)
from grantline.contract.errors import ErrorReply
from grantline.contract.satisfaction import SUBJECT_CHECK, SatisfactionCheckRequest, SatisfactionReport
from grantline.runtime.nats.request_reply import request
from grantline.runtime.service_runtime import ServiceRuntime
from grantline.satisfaction.app import create_runtime
from grantline.satisfaction.settings import SatisfactionSettings

TENANT = "tenant-a"
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def make_service(nats_url: str, database_url: str, **overrides: object) -> ServiceRuntime:
    settings = SatisfactionSettings(
        nats_url=nats_url,
        database_url=database_url,
        environment="test",
        database_pool_size=4,
        run_workers=2,
        check_workers=4,
        **overrides,  # type: ignore[arg-type]
    )
    return create_runtime(settings)


@asynccontextmanager
async def running(*runtimes: ServiceRuntime) -> AsyncIterator[None]:
    started: list[ServiceRuntime] = []
    try:
        for runtime in runtimes:
            await runtime.start()
            started.append(runtime)
        yield
    finally:
        for runtime in reversed(started):
            await runtime.stop()


async def publish(nc: Client, event: Event, msg_id: str | None = None) -> None:
    """Publish through JetStream as the owning service's outbox relay would."""
    await nc.jetstream().publish(
        event.subject(), encode_message(event), headers={"Nats-Msg-Id": msg_id or str(event.id)}
    )


def granted(
    connection_id: str,
    user: str = "alice",
    provider: str = "google",
    scopes: list[str] | None = None,
    when: float = 0,
    **extra: object,
) -> ConnectionGranted:
    owner = "workspace" if user == "workspace" else f"user:{user}"
    return ConnectionGranted(
        tenant_id=extra.pop("tenant_id", TENANT),  # type: ignore[arg-type]
        connection_id=connection_id,
        owner=owner,
        provider=provider,
        scopes=scopes or [],
        occurred_at=at(when),
        **extra,  # type: ignore[arg-type]
    )


def revoked(
    connection_id: str, user: str = "alice", provider: str = "google", when: float = 100
) -> ConnectionRevoked:
    owner = "workspace" if user == "workspace" else f"user:{user}"
    return ConnectionRevoked(
        tenant_id=TENANT,
        connection_id=connection_id,
        owner=owner,
        provider=provider,
        reason="user",
        occurred_at=at(when),
    )


def resolved(run_id: str, connection_id: str, user: str = "alice", provider: str = "google") -> AuditRecord:
    return AuditRecord(
        tenant_id=TENANT,
        actor="vault",
        action="token.resolved",
        connection_id=connection_id,
        provider=provider,
        user_id=user,
        app_id="app-1",
        run_id=run_id,
    )


async def check(
    nc: Client, user: str, requirements: list[object], **extra: object
) -> SatisfactionReport | ErrorReply:
    message = SatisfactionCheckRequest(tenant_id=TENANT, user_id=user, requirements=requirements, **extra)  # type: ignore[arg-type]
    return await request(nc, f"{SUBJECT_CHECK}.{TENANT}", message, SatisfactionReport)


class RunEvents:
    """Collects ``runs.admitted``, ``runs.held`` and ``runs.connection_revoked`` from a core subscription."""

    def __init__(self) -> None:
        self.events: list[RunAdmitted | RunHeld | RunConnectionRevoked] = []

    async def start(self, nc: Client) -> None:
        async def on_message(msg: Msg) -> None:
            event = decode_event(msg.data)
            assert isinstance(event, RunAdmitted | RunHeld | RunConnectionRevoked)
            self.events.append(event)

        for subject in ("runs.admitted.*", "runs.held.*", "runs.connection_revoked.*"):
            await nc.subscribe(subject, cb=on_message)
        await nc.flush()

    def of(self, run_id: str, kind: type[Event] | None = None) -> list[Event]:
        return [e for e in self.events if e.run_id == run_id and (kind is None or isinstance(e, kind))]


async def settle() -> None:
    """Give in-flight callbacks a turn (used only after a positive wait, never to wait for work)."""
    await asyncio.sleep(0)


DURABLES = (
    ("CONNECTIONS", "satisfaction-connections"),
    ("RUNS", "satisfaction-runs-requested"),
    ("RUNS", "satisfaction-runs-finished"),
    ("AUDIT", "satisfaction-token-resolved"),
)


async def idle(runtime: ServiceRuntime) -> bool:
    """True when every consumer has handled everything and the outbox is published: nothing more will come."""
    from nats.js.errors import NotFoundError
    from sqlalchemy import func, select

    from grantline.satisfaction.adapters.tables import outbox

    js = runtime.nats.jetstream()
    for stream, durable in DURABLES:
        try:
            info = await js.consumer_info(stream, durable)
        except NotFoundError:  # the batch loops create their consumers just after start-up
            return False
        if info.num_pending or info.num_ack_pending:
            return False
    async with runtime.sessions() as session:
        return (await session.scalar(select(func.count()).select_from(outbox))) == 0


async def stream_events(nc: Client, subject: str) -> list[Event]:
    """Every event stored on ``subject`` (read with an ephemeral ordered consumer)."""
    from grantline.runtime.nats.streams import stream_for_subject

    js = nc.jetstream()
    stream = stream_for_subject(subject).name
    info = await js.stream_info(stream, subjects_filter=subject)
    total = sum((info.state.subjects or {}).values())
    events: list[Event] = []
    if not total:
        return events
    sub = await js.subscribe(subject, ordered_consumer=True)
    try:
        while len(events) < total:
            msg = await sub.next_msg(timeout=5)
            events.append(decode_event(msg.data))
    finally:
        await sub.unsubscribe()
    return events


def requested(run_id: str, requirements: list[object], user: str = "alice", **extra: object) -> RunRequested:
    return RunRequested(
        tenant_id=TENANT,
        run_id=run_id,
        user_id=user,
        app_id="app-1",
        requirements=requirements,
        **extra,  # type: ignore[arg-type]
    )
