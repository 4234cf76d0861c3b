"""The refresh worker: claims due refreshes under a lease, asks the vault, records the outcomes.

Any number of replicas run this loop side by side: claims use ``FOR UPDATE SKIP LOCKED`` and write a
lease to the row, so a row is held by one worker at a time and comes back when a worker dies.
Outcomes are written in small batches, and only while the lease is still the writer's.
"""

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
import uuid
from collections import Counter, defaultdict, deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from grantline.refresher.adapters.metrics import (
    REFRESH_CLAIMED,
    REFRESH_DEFERRED,
    REFRESH_FAILED,
    REFRESH_LAG_SECONDS,
    REFRESH_SUCCEEDED,
)
from grantline.refresher.adapters.schedule_repository import (
    ClaimedRefresh,
    OutcomeWrite,
    claim_due,
    record_outcomes,
)
from grantline.refresher.adapters.vault_client import VaultRefresher
from grantline.refresher.domain.circuit_breaker import CircuitBreaker
from grantline.refresher.domain.outcomes import Outcome, OutcomeKind, RetryPolicy, unreachable
from grantline.refresher.domain.schedule import SchedulePolicy
from grantline.refresher.service.refresh_attempts import defer_claim, plan_outcome, refresh_condition
from grantline.runtime.service_runtime import ServiceRuntime

log = logging.getLogger(__name__)

OUTCOME_BATCH = 200
# A provider at its concurrency limit gets its extra claims back after this long (plus jitter).
PROVIDER_BUSY_DEFER_SECONDS = 1.0


@dataclass(frozen=True)
class WorkerLimits:
    """How much one worker takes on at a time."""

    batch_size: int = 100
    max_in_flight: int = 200
    provider_concurrency: int = 50
    lease_seconds: float = 60.0
    poll_seconds: float = 0.5
    breaker_failures: int = 10
    breaker_open_seconds: float = 15.0


def worker_name() -> str:
    """A name for this worker that says where it runs (host, pid) and is unique per start."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class RefreshWorker:
    """One process's share of the refresh work."""

    def __init__(
        self,
        runtime: ServiceRuntime,
        *,
        policy: SchedulePolicy,
        retry: RetryPolicy,
        limits: WorkerLimits,
        vault_timeout: float,
    ) -> None:
        self._runtime = runtime
        self._policy = policy
        self._retry = retry
        self._limits = limits
        self._vault_timeout = vault_timeout
        self.name = worker_name()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._per_provider: Counter[str] = Counter()
        self._breakers: defaultdict[str, CircuitBreaker] = defaultdict(
            lambda: CircuitBreaker(limits.breaker_failures, limits.breaker_open_seconds)
        )
        # Claims held for a free slot of their provider (still under this worker's lease), oldest
        # first with the monotonic time they were held: cheaper than writing them back and claiming
        # them again, which is what a saturated provider cost before.
        self._waiting: defaultdict[str, deque[tuple[ClaimedRefresh, float]]] = defaultdict(deque)
        self._held = 0
        # Claim again only once this much room has freed up, so claims stay batches.
        self._claim_threshold = max(1, min(limits.batch_size, limits.max_in_flight) // 2)
        self._vault: VaultRefresher | None = None
        self._outcomes: asyncio.Queue[OutcomeWrite] = asyncio.Queue()
        self._slot_freed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._random = random.Random()

    # -- the loops ----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Claim and dispatch until cancelled (after ``drain`` it only waits to be cancelled)."""
        vault = self._vault = VaultRefresher(self._runtime.nats, timeout=self._vault_timeout)
        writer = asyncio.create_task(self._write_outcomes())
        backoff = 0.2
        try:
            while not self._stopping.is_set():
                busy = len(self._in_flight) + self._held
                free = self._limits.max_in_flight - busy
                if free <= 0 or (busy and free < self._claim_threshold):
                    await self._wait(self._slot_freed, self._limits.poll_seconds)
                    continue
                wanted = min(self._limits.batch_size, free)
                # A provider with claims already waiting for a slot gets no more until they start.
                saturated = [provider for provider, queue in self._waiting.items() if queue]
                try:
                    claims = await self._claim(wanted, saturated)
                except Exception as error:  # Postgres away: claim nothing, try again shortly
                    log.warning("claiming due refreshes failed", extra={"error": type(error).__name__})
                    await self._wait(self._stopping, backoff)
                    backoff = min(backoff * 2, 5.0)
                    continue
                backoff = 0.2
                for claim in claims:
                    self._dispatch(claim, vault)
                if len(claims) < wanted:
                    # Nothing more is due, except perhaps for saturated providers: wait for room there.
                    room = self._slot_freed if saturated else self._stopping
                    await self._wait(room, self._limits.poll_seconds)
            await asyncio.Event().wait()  # drained: keep the writer alive until the runtime cancels us
        finally:
            for task in list(self._in_flight):
                task.cancel()
            writer.cancel()
            await asyncio.gather(writer, *self._in_flight, return_exceptions=True)

    async def drain(self, timeout: float = 5.0) -> None:
        """Stop claiming; give in-flight refreshes a moment to finish and their outcomes to be written."""
        self._stopping.set()
        for provider in list(self._waiting):  # claims not started go back now, for anyone to take
            self._give_back_waiting(provider, "shutdown")
        # Whatever is still unfinished after the timeout keeps its lease and is taken over later.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while self._in_flight:
                    await asyncio.gather(*list(self._in_flight), return_exceptions=True)
                await self._outcomes.join()

    async def _claim(self, limit: int, skip_providers: list[str]) -> list[ClaimedRefresh]:
        now = datetime.now(UTC)
        async with self._runtime.single_statement(wake_relay=False) as conn:
            claims = await claim_due(
                conn,
                owner=self.name,
                now=now,
                lease_until=now + timedelta(seconds=self._limits.lease_seconds),
                limit=limit,
                skip_providers=skip_providers,
            )
        for claim in claims:
            REFRESH_CLAIMED.labels(claim.provider).inc()
        return claims

    def _dispatch(self, claim: ClaimedRefresh, vault: VaultRefresher) -> None:
        provider = claim.provider
        breaker = self._breakers[provider]
        if not breaker.allows(time.monotonic()):
            assert breaker.opened_until is not None
            wait = max(breaker.opened_until - time.monotonic(), 0.0) + self._random.uniform(0, 1)
            self._defer(claim, wait, "circuit_open")
        elif self._per_provider[provider] >= self._limits.provider_concurrency:
            self._waiting[provider].append((claim, time.monotonic()))
            self._held += 1
        else:
            self._start(claim, vault)

    def _start(self, claim: ClaimedRefresh, vault: VaultRefresher) -> None:
        self._per_provider[claim.provider] += 1
        task = asyncio.create_task(self._attempt(claim, vault))
        self._in_flight.add(task)
        task.add_done_callback(lambda done: self._finished(done, claim.provider))

    def _finished(self, task: asyncio.Task[None], provider: str) -> None:
        self._in_flight.discard(task)
        queue = self._waiting.get(provider)
        if queue and self._stopping.is_set():
            self._give_back_waiting(provider, "shutdown")
        elif queue and self._vault is not None:
            # A held claim older than half its lease goes back rather than racing the lease's end.
            too_old = time.monotonic() - self._limits.lease_seconds / 2
            while queue and self._per_provider[provider] < self._limits.provider_concurrency:
                claim, held_at = queue.popleft()
                self._held -= 1
                if held_at < too_old:
                    self._defer(
                        claim, PROVIDER_BUSY_DEFER_SECONDS * (1 + self._random.random()), "provider_busy"
                    )
                else:
                    self._dispatch(claim, self._vault)
        busy = len(self._in_flight) + self._held
        if not queue or self._limits.max_in_flight - busy >= self._claim_threshold:
            self._slot_freed.set()

    def _give_back_waiting(self, provider: str, reason: str) -> None:
        queue = self._waiting.get(provider)
        while queue:
            claim, _ = queue.popleft()
            self._held -= 1
            self._defer(claim, 0.0, reason)

    def _defer(self, claim: ClaimedRefresh, seconds: float, reason: str) -> None:
        REFRESH_DEFERRED.labels(claim.provider, reason).inc()
        until = datetime.now(UTC) + timedelta(seconds=seconds)
        self._outcomes.put_nowait(defer_claim(claim, until=until, reason=reason))

    async def _attempt(self, claim: ClaimedRefresh, vault: VaultRefresher) -> None:
        try:
            outcome = await vault.refresh(claim.tenant_id, claim.connection_id, refresh_condition(claim))
        except Exception as error:  # a broken connection or an unreadable reply: retry later
            log.warning("vault.refresh request failed", extra={"error": type(error).__name__})
            outcome = unreachable("request_error")
        finally:
            self._per_provider[claim.provider] -= 1
        now = datetime.now(UTC)
        self._observe(claim, outcome, now)
        write = plan_outcome(
            claim,
            outcome,
            now=now,
            policy=self._policy,
            retry=self._retry,
            random_fraction=self._random.random(),
        )
        self._outcomes.put_nowait(write)

    def _observe(self, claim: ClaimedRefresh, outcome: Outcome, now: datetime) -> None:
        provider = claim.provider
        breaker = self._breakers[provider]
        if outcome.transient:
            breaker.record_failure(time.monotonic())
            REFRESH_FAILED.labels(provider, outcome.reason or "unknown").inc()
            log.warning(
                "refresh failed; will retry",
                extra={
                    "connection_id": claim.connection_id,
                    "provider": provider,
                    "reason": outcome.reason,
                    "attempt": claim.attempts,
                },
            )
            return
        breaker.record_success()
        if outcome.kind is OutcomeKind.ENDED:
            REFRESH_FAILED.labels(provider, outcome.reason or "unknown").inc()
            log.info(
                "refresh schedule ended",
                extra={"connection_id": claim.connection_id, "provider": provider, "reason": outcome.reason},
            )
            return
        REFRESH_SUCCEEDED.labels(provider, outcome.kind.value).inc()
        if claim.due_at is not None:
            REFRESH_LAG_SECONDS.labels(provider).observe(max((now - claim.due_at).total_seconds(), 0.0))

    async def _write_outcomes(self) -> None:
        # One statement per batch of outcomes: at hundreds of refreshes a second, a commit per
        # refresh would cost more than the refreshes. A failed write is retried; if it never lands,
        # the lease ends and the row is claimed again (the vault then answers "already fresh").
        backoff = 0.1
        batch: list[OutcomeWrite] = []
        while True:
            if not batch:
                batch.append(await self._outcomes.get())
            while len(batch) < OUTCOME_BATCH and not self._outcomes.empty():
                batch.append(self._outcomes.get_nowait())
            try:
                async with self._runtime.single_statement(wake_relay=False) as conn:
                    await record_outcomes(conn, batch)
            except Exception as error:
                log.warning(
                    "recording refresh outcomes failed; retrying", extra={"error": type(error).__name__}
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.1
            for _ in batch:
                self._outcomes.task_done()
            batch = []

    async def _wait(self, event: asyncio.Event, timeout: float) -> None:
        # asyncio.timeout rather than wait_for: on 3.11, wait_for can swallow a cancellation that
        # arrives as the event is set (exactly what stopping does), leaving the task unstoppable.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await event.wait()
        if event is self._slot_freed:
            event.clear()
