"""The three measurements: admission latency under an open-loop rate, check throughput, revocation latency."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from nats.aio.client import Client
from nats.aio.msg import Msg

from benchmarks.satisfaction.setup import PROVIDERS, TENANT, connection_id
from grantline.contract import AuditRecord, ConnectionRevoked, RunRequested, encode_message
from grantline.contract.satisfaction import SUBJECT_CHECK, SatisfactionCheckRequest

# By default the load generator publishes into the stream with core NATS publishes (JetStream stores
# them; every answer proves its request arrived), as the audit benchmark does: waiting for a JetStream
# acknowledgement per request costs this process ~0.3 ms of CPU per run on the two cores the system
# under test shares with it. BENCH_JS_PUBLISH=1 publishes through JetStream with acknowledgements.
JETSTREAM_PUBLISH = os.environ.get("BENCH_JS_PUBLISH") == "1"
# BENCH_DEBUG=1 prints the slowest answers with when they were sent: a stall shows as many slow
# answers sent at one moment, queueing as slow answers spread over the phase.
SHOW_SLOWEST = os.environ.get("BENCH_DEBUG") == "1"

REQUIREMENTS: list[object] = [
    "github",
    {"type": "category", "id": "email"},
    {"type": "specific", "id": "slack"},
]


@dataclass(frozen=True)
class Latencies:
    """Latencies in seconds, with how many were sent and how long sending took."""

    samples: list[float]
    sent: int
    send_seconds: float

    def percentile(self, p: float) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")

    def line(self, what: str) -> str:
        return (
            f"{what}: {len(self.samples)}/{self.sent} answered,"
            f" sent at {self.sent / self.send_seconds:,.0f}/s;"
            f" p50 {self.percentile(50) * 1000:.1f} ms, p99 {self.percentile(99) * 1000:.1f} ms,"
            f" max {max(self.samples, default=float('nan')) * 1000:.1f} ms"
        )


async def _open_loop(
    nc: Client,
    *,
    reply_subjects: tuple[str, ...],
    key_of: Callable[[dict[str, object]], str],
    messages: list[tuple[str, str, bytes, dict[str, str]]],
    rate: float,
    timeout: float,
) -> Latencies:
    """Publish ``(key, subject, payload, headers)`` at ``rate``/s via JetStream; time each key's answer."""
    sent_at: dict[str, float] = {}
    samples: list[float] = []
    done = asyncio.Event()
    slowest: list[tuple[float, float]] = []

    async def on_reply(msg: Msg) -> None:
        received = time.perf_counter()
        started = sent_at.pop(key_of(json.loads(msg.data)), None)
        if started is not None:
            samples.append(received - started)
            if SHOW_SLOWEST:
                slowest.append((received - started, started - start))
            if not sent_at and len(samples) == len(messages):
                done.set()

    subscriptions = [await nc.subscribe(subject, cb=on_reply) for subject in reply_subjects]
    await nc.flush()
    js = nc.jetstream()
    # Only the publishes not yet acknowledged are kept: gathering every ack at the end took the
    # client's loop a few hundred milliseconds, which it then counted as the last runs' latency.
    unacknowledged: set[asyncio.Future[Any]] = set()
    refused: list[BaseException] = []

    def acknowledged(future: asyncio.Future[Any]) -> None:
        unacknowledged.discard(future)
        if not future.cancelled() and future.exception() is not None:
            refused.append(future.exception())  # type: ignore[arg-type]

    # The client's own garbage collection would be counted as latency: collect now, then pause it
    # for the measured window (a load generator's pauses are not the system's).
    gc.collect()
    gc.disable()
    start = time.perf_counter()
    try:
        for index, (key, subject, payload, headers) in enumerate(messages):
            delay = start + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            sent_at[key] = time.perf_counter()
            if not JETSTREAM_PUBLISH:
                await nc.publish(subject, payload, headers=headers)
                continue
            ack = asyncio.ensure_future(js.publish(subject, payload, headers=headers))
            unacknowledged.add(ack)
            ack.add_done_callback(acknowledged)
        send_seconds = time.perf_counter() - start
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), timeout=timeout)
    finally:
        gc.enable()
    if unacknowledged:
        await asyncio.wait(unacknowledged, timeout=timeout)
    if refused:
        raise RuntimeError(f"{len(refused)} publishes refused, e.g. {refused[0]!r}")
    for subscription in subscriptions:
        await subscription.unsubscribe()
    if slowest:
        slowest.sort(reverse=True)
        worst = [(round(latency * 1000, 1), round(sent, 2)) for latency, sent in slowest[:15]]
        print("slowest (latency ms, sent at s):", worst)
    return Latencies(samples, len(messages), send_seconds)


def run_requests(
    prefix: str, count: int, users: int, chosen: list[int] | None = None
) -> list[tuple[str, str, bytes, dict[str, str]]]:
    """Pre-encoded ``runs.requested`` events for random (or ``chosen``) users; encoding is not timed."""
    out = []
    for index in range(count):
        user = chosen[index] if chosen is not None else random.randrange(users)
        event = RunRequested(
            tenant_id=TENANT,
            run_id=f"{prefix}-{index}",
            user_id=f"u{user}",
            app_id="bench-app",
            requirements=REQUIREMENTS,  # type: ignore[arg-type]
            trigger="api",
        )
        out.append((event.run_id, event.subject(), encode_message(event), {"Nats-Msg-Id": str(event.id)}))
    return out


async def admission(
    nc: Client, *, users: int, rate: float, seconds: float, prefix: str, chosen: list[int] | None = None
) -> Latencies:
    """``runs.requested`` -> ``runs.admitted`` (or ``runs.held``) latency at an open-loop ``rate``."""
    messages = run_requests(prefix, len(chosen) if chosen else int(rate * seconds), users, chosen)
    return await _open_loop(
        nc,
        reply_subjects=("runs.admitted.*", "runs.held.*"),
        key_of=lambda body: str(body["run_id"]),
        messages=messages,
        rate=rate,
        timeout=60,
    )


async def check_rate(nc: Client, *, users: int, seconds: float, concurrency: int) -> tuple[float, Latencies]:
    """Closed loop: ``concurrency`` callers asking ``satisfaction.check`` back to back for ``seconds``."""
    samples: list[float] = []
    stop_at = time.perf_counter() + seconds
    payloads = [
        SatisfactionCheckRequest(
            tenant_id=TENANT,
            user_id=f"u{random.randrange(users)}",
            requirements=REQUIREMENTS,  # type: ignore[arg-type]
        )
        .model_dump_json()
        .encode()
        for _ in range(2000)
    ]

    async def caller(offset: int) -> None:
        index = offset
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            await nc.request(f"{SUBJECT_CHECK}.{TENANT}", payloads[index % len(payloads)], timeout=10)
            samples.append(time.perf_counter() - started)
            index += concurrency

    started = time.perf_counter()
    await asyncio.gather(*(caller(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - started
    return len(samples) / elapsed, Latencies(samples, len(samples), elapsed)


async def resolutions(nc: Client, database_url: str, runs: list[tuple[str, int, int]]) -> None:
    """Publish the vault's ``token.resolved`` for each ``(run_id, user, provider_index)``; wait for all."""
    js = nc.jetstream()
    acks = []
    for run_id, user, index in runs:
        record = AuditRecord(
            tenant_id=TENANT,
            actor="vault",
            action="token.resolved",
            connection_id=connection_id(user, index),
            provider=PROVIDERS[index],
            user_id=f"u{user}",
            run_id=run_id,
        )
        headers = {"Nats-Msg-Id": str(record.id)}
        acks.append(js.publish(record.subject(), encode_message(record), headers=headers))
    await asyncio.gather(*acks)
    await _poll(lambda: _count(database_url, "run_connections", len(runs)), timeout=120)


async def revocation(nc: Client, runs: list[tuple[str, int, int]], rate: float) -> Latencies:
    """``connections.revoked`` -> ``runs.connection_revoked`` latency for runs that resolved it."""
    messages = []
    for _, user, index in runs:
        event = ConnectionRevoked(
            tenant_id=TENANT,
            connection_id=connection_id(user, index),
            owner=f"user:u{user}",
            provider=PROVIDERS[index],
            reason="user",
        )
        messages.append(
            (event.connection_id, event.subject(), encode_message(event), {"Nats-Msg-Id": str(event.id)})
        )
    return await _open_loop(
        nc,
        reply_subjects=("runs.connection_revoked.*",),
        key_of=lambda body: str(body["connection_id"]),
        messages=messages,
        rate=rate,
        timeout=60,
    )


async def _count(database_url: str, table: str, wanted: int) -> bool:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        row = await (await conn.execute(f"SELECT count(*) FROM satisfaction.{table}")).fetchone()
    return bool(row and row[0] >= wanted)


async def _poll(predicate: Callable[[], Awaitable[bool]], timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while not await predicate():
        if time.perf_counter() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.2)


def summary(values: list[float]) -> str:
    return f"mean {statistics.fmean(values) * 1000:.1f} ms" if values else "n/a"
