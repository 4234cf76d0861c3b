"""The soak's fault schedule: one fault at a time, each followed by a measured recovery.

Kinds, in turn: NATS restarted, Postgres restarted, a service SIGKILLed and started again (a different
service each time), the provider slow (8 s answers) and the provider failing (500) for a while.
A fault's window runs from its start to its recovery plus a grace period: operations that started
inside a window may fail; any failure outside every window is an error the soak reports.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from grantline.cli.service_processes import SERVICES, ServiceProcesses
from grantline.devstack.embedded import EmbeddedNats, EmbeddedPostgres

KINDS = ("nats-restart", "postgres-restart", "service-kill", "provider-slow", "provider-500")
PROVIDER_FAULT_SECONDS = 15.0
# Operations in flight when a fault starts may fail up to their own timeout later; recovery is
# followed by this grace before failures count again.
GRACE_SECONDS = 5.0
OPERATION_TIMEOUT_SECONDS = 30.0


@dataclass
class FaultRecord:
    kind: str
    detail: str
    started: float
    ended: float = 0.0  # when the fault itself was over (server back up, switch removed)
    recovered: float = 0.0  # when every service was ready again

    @property
    def recovery_seconds(self) -> float:
        return self.recovered - self.ended

    def covers(self, moment: float) -> bool:
        return self.started - OPERATION_TIMEOUT_SECONDS <= moment <= self.recovered + GRACE_SECONDS


@dataclass
class FaultSchedule:
    nats: EmbeddedNats
    postgres: EmbeddedPostgres
    services: ServiceProcesses
    sandbox: httpx.AsyncClient
    records: list[FaultRecord] = field(default_factory=list)
    began: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self._victims = itertools.cycle(
            [name for name in SERVICES if name != "auth-gateway"] + ["auth-gateway"]
        )

    async def run(self, first_at: float, every: float, until: float, stopped: asyncio.Event) -> None:
        """Inject faults from ``first_at`` every ``every`` seconds (monotonic clock) until ``until``."""
        for kind in itertools.cycle(KINDS):
            delay = first_at - time.monotonic()
            if delay > 0:
                try:
                    await asyncio.wait_for(stopped.wait(), delay)
                    return
                except TimeoutError:
                    pass
            if time.monotonic() > until:
                return
            await self.inject(kind)
            first_at += every

    async def inject(self, kind: str) -> FaultRecord:
        action: Callable[[FaultRecord], Awaitable[None]] = getattr(self, "_" + kind.replace("-", "_"))
        record = FaultRecord(kind, "", time.monotonic())
        print(f"  fault: {kind} at +{record.started - self.began:.0f}s", flush=True)
        await action(record)
        record.ended = time.monotonic()
        await asyncio.to_thread(self.services.wait_ready, list(SERVICES), 180)
        record.recovered = time.monotonic()
        self.records.append(record)
        print(f"    {record.detail}; every service ready {record.recovery_seconds:.1f}s later", flush=True)
        return record

    async def _nats_restart(self, record: FaultRecord) -> None:
        record.detail = "nats-server SIGTERM, started again"
        await asyncio.to_thread(self.nats.restart)

    async def _postgres_restart(self, record: FaultRecord) -> None:
        record.detail = "Postgres fast shutdown, started again"
        await asyncio.to_thread(self.postgres.restart)

    async def _service_kill(self, record: FaultRecord) -> None:
        victim = next(self._victims)
        record.detail = f"{victim} SIGKILL, started again"
        await asyncio.to_thread(self.services.kill, victim)
        self.services.spawn(victim)

    async def _provider_slow(self, record: FaultRecord) -> None:
        record.detail = f"token endpoint answers after 8 s for {PROVIDER_FAULT_SECONDS:.0f} s"
        await self._provider_fault({"endpoint": "token", "delay_ms": 8000})

    async def _provider_500(self, record: FaultRecord) -> None:
        record.detail = f"token endpoint answers 500 for {PROVIDER_FAULT_SECONDS:.0f} s"
        await self._provider_fault({"endpoint": "token", "status": 500})

    async def _provider_fault(self, fault: dict[str, object]) -> None:
        added = await self.sandbox.post("/_sandbox/faults", json=fault)
        added.raise_for_status()
        await asyncio.sleep(PROVIDER_FAULT_SECONDS)  # the fault's duration, by design
        removed = await self.sandbox.delete(f"/_sandbox/faults/{added.json()['id']}")
        removed.raise_for_status()

    def covering(self, moment: float) -> bool:
        return any(record.covers(moment) for record in self.records)
