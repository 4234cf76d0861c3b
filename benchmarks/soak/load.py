"""The soak's mixed load: each flow a loop at its own pace, every operation's outcome timestamped.

Flows (what a platform does all day): ``connect`` (a run held for a missing connection, the user
connects through the browser flow, the held run is admitted), ``admit`` (a run of a connected user,
admitted at once), ``resolve`` (tool calls of admitted runs), ``revoke`` (the user revokes; the
in-flight run hears it and its next resolve is refused), ``webhook`` (forged provider webhooks,
refused without changing anything). Refreshes happen in the background (tokens live 30 s) and are
counted from the provider's side.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import httpx

from grantline.contract import RunAdmitted, RunHeld
from grantline.contract.errors import ErrorCode
from grantline.runner import ResolveError, RunnerClient

PROVIDER = "sandbox"
APP_ID = "soak-app"
RETURN_TO = "http://127.0.0.1:3000/soak/done"
# How often each flow starts an operation (seconds between starts).
PACES = {"connect": 1.0, "admit": 0.5, "resolve": 0.05, "revoke": 4.0, "webhook": 2.0}


@dataclass
class Outcome:
    flow: str
    started: float
    seconds: float
    error: str | None = None


@dataclass
class ActiveRun:
    run_id: str
    user: str
    connection_id: str


@dataclass
class Load:
    """Runs the flows until ``stop``; ``outcomes`` holds every operation."""

    runner: RunnerClient
    api: httpx.AsyncClient
    browser: httpx.AsyncClient
    tenant_id: str
    seed: int
    outcomes: list[Outcome] = field(default_factory=list)
    active: list[ActiveRun] = field(default_factory=list)
    connected_users: list[tuple[str, str]] = field(default_factory=list)
    requested_runs: set[str] = field(default_factory=set)
    held_runs: set[str] = field(default_factory=set)
    # Held runs whose user completed the grant: each must be admitted exactly once.
    granted_runs: set[str] = field(default_factory=set)
    revocations_heard: int = 0
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _users: int = 0

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)

    async def run(self) -> None:
        await asyncio.gather(*(self._flow(name, pace) for name, pace in PACES.items()))

    def stop(self) -> None:
        self._stop.set()

    async def _flow(self, name: str, pace: float) -> None:
        operation = getattr(self, f"_{name}")
        pending: set[asyncio.Task[None]] = set()
        while not self._stop.is_set():
            task = asyncio.create_task(self._timed(name, operation))
            pending.add(task)
            task.add_done_callback(pending.discard)
            # The flow's pace, not a wait for work: operations overlap when the stack is slow.
            await asyncio.sleep(pace)
        await asyncio.gather(*pending)

    async def _timed(self, name: str, operation) -> None:  # type: ignore[no-untyped-def]
        started = time.monotonic()
        try:
            done = await operation()
        except Exception as error:
            self.outcomes.append(Outcome(name, started, time.monotonic() - started, _describe(error)))
            return
        if done is not False:  # False: nothing to do yet (no run to resolve for), not counted
            self.outcomes.append(Outcome(name, started, time.monotonic() - started))

    # -- flows --------------------------------------------------------------------------------------

    async def _connect(self) -> None:
        self._users += 1
        user, run_id = f"soak-user-{self._users}", f"run-{uuid.uuid4()}"
        self.requested_runs.add(run_id)
        held = await self.runner.request_run(self.tenant_id, run_id, user, APP_ID, requirements=[PROVIDER])
        if not isinstance(held, RunHeld):
            raise AssertionError(f"a run of a new user was not held: {held!r}")
        self.held_runs.add(run_id)
        initiated = await self.api.post(
            "/v1/connections/initiate", json={"user_id": user, "provider": PROVIDER, "return_to": RETURN_TO}
        )
        _expect(initiated, 200)
        connection_id = initiated.json()["connection_id"]
        authorized = await self.browser.get(initiated.json()["authorize_url"])
        _expect(authorized, 302)
        landed = await self.browser.get(authorized.headers["location"], follow_redirects=False)
        _expect(landed, 303)
        outcome = parse_qs(urlsplit(landed.headers["location"]).query)
        if outcome.get("status") != ["connected"]:
            raise AssertionError(f"callback ended {outcome.get('status')}, error {outcome.get('error')}")
        self.granted_runs.add(run_id)
        await self.runner.wait_until_admitted(run_id)
        self.active.append(ActiveRun(run_id, user, connection_id))
        self.connected_users.append((user, connection_id))

    async def _admit(self) -> bool:
        if not self.connected_users:
            return False
        user, _ = self.random.choice(self.connected_users)
        run_id = f"run-{uuid.uuid4()}"
        self.requested_runs.add(run_id)
        outcome = await self.runner.request_run(self.tenant_id, run_id, user, APP_ID, requirements=[PROVIDER])
        if isinstance(outcome, RunAdmitted):
            await self.runner.finish(run_id)
            return True
        # A user revoked meanwhile is held again: as documented, not an error.
        if any(u == user for u, _ in self.connected_users):
            raise AssertionError(f"a run of a connected user was not admitted: {outcome!r}")
        await self.runner.finish(run_id)
        return True

    async def _resolve(self) -> bool:
        if not self.active:
            return False
        run = self.random.choice(self.active)
        try:
            await self.runner.resolve(run.run_id, PROVIDER, tool="soak_call")
        except ResolveError as error:
            if error.code in (ErrorCode.REVOKED, ErrorCode.FORBIDDEN) and run not in self.active:
                return True  # revoked between the pick and the call
            raise
        return True

    async def _revoke(self) -> bool:
        if len(self.active) < 3:
            return False
        run = self.active.pop(0)
        self.connected_users = [(u, c) for u, c in self.connected_users if c != run.connection_id]

        async def heard() -> None:
            async for revocation in self.runner.revocations(run.run_id):
                if revocation.connection_id == run.connection_id:
                    return

        told = asyncio.create_task(heard())
        revoked = await self.api.delete(f"/v1/connections/{run.connection_id}")
        _expect(revoked, 200)
        await asyncio.wait_for(told, 30)
        self.revocations_heard += 1
        try:
            await self.runner.resolve(run.run_id, PROVIDER, tool="after_revoke")
        except ResolveError as error:
            if error.code != ErrorCode.REVOKED:
                raise
        else:
            raise AssertionError("a resolve after the revocation succeeded")
        await self.runner.finish(run.run_id)
        return True

    async def _webhook(self) -> None:
        forged = await self.browser.post(
            f"{self.api.base_url}/v1/webhooks/slack/soak",
            content=b'{"type":"event_callback","event":{"type":"tokens_revoked"}}',
            headers={
                "X-Slack-Signature": "v0=" + "0" * 64,
                "X-Slack-Request-Timestamp": str(int(time.time())),
            },
        )
        if not 400 <= forged.status_code < 500:
            raise AssertionError(f"forged webhook answered {forged.status_code}")

    # -- summary ------------------------------------------------------------------------------------

    def per_flow(self) -> dict[str, list[Outcome]]:
        flows: dict[str, list[Outcome]] = defaultdict(list)
        for outcome in self.outcomes:
            flows[outcome.flow].append(outcome)
        return flows


def _expect(response: httpx.Response, status: int) -> None:
    if response.status_code != status:
        raise AssertionError(
            f"{response.request.method} {response.request.url.path} -> {response.status_code}"
        )


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {str(error)[:160]}"
