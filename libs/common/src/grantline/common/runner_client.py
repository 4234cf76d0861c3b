"""A small client for app runners: request a run and await admission, resolve tokens, hear revocations.

One ``RunnerClient`` per process and NATS connection. For each tenant it serves it listens (core NATS)
to ``runs.admitted.<tenant>``, ``runs.held.<tenant>`` and ``runs.connection_revoked.<tenant>`` and routes
each event to the run it names, so any number of runs can be awaited at once. It subscribes before it
publishes, so an answer cannot overtake the subscription; outcomes and revocations of the runs it
requested are kept until ``finish``. An admitted run's grant is kept too, and ``resolve`` presents it:
the vault answers only inside the grant (docs/runners.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import SecretStr, ValidationError

from grantline.common.contract.envelope import tenant_scoped
from grantline.common.contract.errors import ErrorCode, ErrorReply
from grantline.common.contract.registry import decode_event, encode_message
from grantline.common.contract.run_grants import unverified_claims
from grantline.common.contract.runs import (
    RequirementSpec,
    RunAdmitted,
    RunConnectionRevoked,
    RunFinished,
    RunHeld,
    RunRequested,
    SkillRequirements,
    StageRequirements,
    Trigger,
)
from grantline.common.contract.satisfaction import (
    SUBJECT_CHECK,
    SUBJECT_RENEW_GRANT,
    RenewGrantReply,
    RenewGrantRequest,
    SatisfactionCheckRequest,
    SatisfactionReport,
)
from grantline.common.contract.vault import SUBJECT_RESOLVE, ResolveReply, ResolveRequest
from grantline.common.nats.headers import event_headers
from grantline.common.nats.request_reply import request
from grantline.common.nats.secret_wire import request_with_secrets

RunOutcome = RunAdmitted | RunHeld

# A grant with less than this share of its lifetime left is renewed before it is presented.
RENEW_WHEN_LEFT = 0.2


def _expiring(grant: str) -> bool:
    claims = unverified_claims(grant)
    issued, expires = claims.get("iat"), claims.get("exp")
    if not isinstance(issued, int) or not isinstance(expires, int):
        return False
    return expires - time.time() < RENEW_WHEN_LEFT * (expires - issued)


_FOLLOWED = (RunAdmitted, RunHeld, RunConnectionRevoked)


class ResolveError(Exception):
    """``vault.resolve`` answered with an error; ``code`` is the DESIGN error code (``not_connected``...)."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message


@dataclass
class _WatchedRun:
    tenant_id: str
    outcome: RunOutcome | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    revocations: list[RunConnectionRevoked] = field(default_factory=list)
    finished: bool = False
    # The run's current grant: the admission's, then each renewal's.
    grant: str = ""


class RunnerClient:
    """Request runs, await their admission, resolve tokens for their tool calls, hear revocations."""

    def __init__(self, nc: Client, *, timeout: float = 10.0) -> None:
        self._nc = nc
        self._timeout = timeout
        self._runs: dict[str, _WatchedRun] = {}
        self._subscriptions: dict[str, list[Subscription]] = {}
        self._listening = asyncio.Lock()

    async def request_run(
        self,
        tenant_id: str,
        run_id: str,
        user_id: str,
        app_id: str,
        requirements: Sequence[RequirementSpec] = (),
        skills: Sequence[SkillRequirements] = (),
        trigger: Trigger = "api",
        is_test: bool = False,
        *,
        stages: Sequence[StageRequirements] = (),
        timeout: float | None = None,
    ) -> RunOutcome:
        """Publish ``runs.requested`` and return the ``runs.admitted`` or ``runs.held`` answer for the run."""
        event = RunRequested(
            tenant_id=tenant_id,
            run_id=run_id,
            user_id=user_id,
            app_id=app_id,
            requirements=list(requirements),
            skills=list(skills),
            stages=list(stages),
            trigger=trigger,
            is_test=is_test,
        )
        await self._listen(tenant_id)
        watched = self._runs.setdefault(run_id, _WatchedRun(tenant_id))
        await self._nc.jetstream().publish(
            event.subject(), encode_message(event), headers=event_headers(event)
        )
        return await self._wait(run_id, watched, lambda o: o is not None, timeout)

    async def wait_until_admitted(self, run_id: str, timeout: float | None = None) -> RunAdmitted:
        """Wait until a run this client requested is admitted (a held run resumes after the user connects)."""
        watched = self._runs.get(run_id)
        if watched is None:
            raise KeyError(f"run {run_id!r} was not requested through this client")
        outcome = await self._wait(run_id, watched, lambda o: isinstance(o, RunAdmitted), timeout)
        assert isinstance(outcome, RunAdmitted)
        return outcome

    async def check(
        self,
        tenant_id: str,
        user_id: str,
        requirements: Sequence[RequirementSpec] = (),
        skills: Sequence[SkillRequirements] = (),
        *,
        stages: Sequence[StageRequirements] = (),
        timeout: float | None = None,
    ) -> SatisfactionReport:
        """Whether the user has connected what an app needs, without requesting a run
        (``satisfaction.check.<tenant>``); raises ``ResolveError`` on an error reply."""
        message = SatisfactionCheckRequest(
            tenant_id=tenant_id,
            user_id=user_id,
            requirements=list(requirements),
            skills=list(skills),
            stages=list(stages),
        )
        reply = await request(
            self._nc,
            tenant_scoped(SUBJECT_CHECK, tenant_id),
            message,
            SatisfactionReport,
            timeout=timeout or self._timeout,
        )
        if isinstance(reply, ErrorReply):
            raise ResolveError(reply.error.code, reply.error.message)
        return reply

    def grant(self, run_id: str) -> str:
        """The run grant of an admitted run this client requested (to hand to a tool or the proxy)."""
        watched = self._runs.get(run_id)
        if watched is None or not isinstance(watched.outcome, RunAdmitted):
            raise KeyError(f"run {run_id!r} was not admitted through this client")
        return watched.grant or watched.outcome.grant

    async def renew_grant(self, run_id: str, *, timeout: float | None = None) -> str:
        """A fresh grant for a run still in progress (``satisfaction.renew_grant.<tenant>``); ``resolve``
        renews by itself when the grant is about to expire. Raises ``ResolveError`` (``forbidden``)
        once the run has finished or the grant has expired."""
        current = self.grant(run_id)
        watched = self._runs[run_id]
        reply = await request_with_secrets(
            self._nc,
            tenant_scoped(SUBJECT_RENEW_GRANT, watched.tenant_id),
            RenewGrantRequest(grant=SecretStr(current)),
            RenewGrantReply,
            timeout=timeout or self._timeout,
        )
        if isinstance(reply, ErrorReply):
            raise ResolveError(reply.error.code, reply.error.message)
        watched.grant = reply.grant
        return reply.grant

    async def resolve(
        self,
        run_id: str | None = None,
        provider: str | None = None,
        *,
        app: str | None = None,
        tool: str | None = None,
        scopes: Sequence[str] = (),
        grant: str | None = None,
        timeout: float | None = None,
    ) -> ResolveReply:
        """The acting user's token for a tool call of an admitted run; raises ``ResolveError`` with
        the vault's error code (``forbidden`` outside the run's grant).

        Name the run (admitted through this client), or pass its ``grant`` (admitted elsewhere).
        """
        if grant is None:
            if run_id is None:
                raise ValueError("pass the run_id of a run admitted through this client, or its grant")
            grant = self.grant(run_id)
            if _expiring(grant):
                grant = await self.renew_grant(run_id, timeout=timeout)
        tenant_id = unverified_claims(grant).get("tid")
        if not isinstance(tenant_id, str) or not tenant_id:
            raise ValueError("the grant names no tenant")
        message = ResolveRequest(
            grant=SecretStr(grant), provider=provider, app=app, tool=tool, scopes=list(scopes)
        )
        reply = await request_with_secrets(
            self._nc,
            tenant_scoped(SUBJECT_RESOLVE, tenant_id),
            message,
            ResolveReply,
            timeout=timeout or self._timeout,
        )
        if isinstance(reply, ErrorReply):
            raise ResolveError(reply.error.code, reply.error.message)
        return reply

    async def revocations(self, run_id: str) -> AsyncIterator[RunConnectionRevoked]:
        """Each ``runs.connection_revoked`` for the run, including earlier ones; ends at ``finish``."""
        watched = self._runs.get(run_id)
        if watched is None:
            raise KeyError(f"run {run_id!r} was not requested through this client")
        await self._listen(watched.tenant_id)
        seen = 0
        while True:
            while seen < len(watched.revocations):
                seen += 1
                yield watched.revocations[seen - 1]
            if watched.finished:
                return
            watched.changed.clear()
            await watched.changed.wait()

    async def finish(self, run_id: str, tenant_id: str | None = None) -> None:
        """Publish ``runs.finished`` (revocations stop reaching the run) and forget the run."""
        watched = self._runs.pop(run_id, None)
        tenant = tenant_id or (watched.tenant_id if watched else None)
        if tenant is None:
            raise KeyError(f"run {run_id!r} was not requested through this client; pass tenant_id")
        event = RunFinished(tenant_id=tenant, run_id=run_id)
        await self._nc.jetstream().publish(
            event.subject(), encode_message(event), headers=event_headers(event)
        )
        if watched is not None:
            watched.finished = True
            watched.changed.set()

    async def close(self) -> None:
        """Stop listening."""
        for subscriptions in self._subscriptions.values():
            for subscription in subscriptions:
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()
        self._subscriptions.clear()

    async def _wait(
        self,
        run_id: str,
        watched: _WatchedRun,
        done: Callable[[RunOutcome | None], bool],
        timeout: float | None,
    ) -> RunOutcome:
        async with asyncio.timeout(timeout or self._timeout):
            while not done(watched.outcome):
                watched.changed.clear()
                await watched.changed.wait()
        assert watched.outcome is not None
        return watched.outcome

    async def _listen(self, tenant_id: str) -> None:
        async with self._listening:
            if tenant_id in self._subscriptions:
                return
            self._subscriptions[tenant_id] = [
                await self._nc.subscribe(event.subject_for(tenant_id), cb=self._on_message)
                for event in _FOLLOWED
            ]
            # The server must know the subscriptions before the request goes out.
            await self._nc.flush()

    async def _on_message(self, msg: Msg) -> None:
        try:
            run_id = json.loads(msg.data).get("run_id")
        except (ValueError, AttributeError):
            return
        watched = self._runs.get(run_id) if isinstance(run_id, str) else None
        if watched is None:
            return  # another runner's run
        try:
            event = decode_event(msg.data)
        except ValidationError:
            return
        if isinstance(event, RunConnectionRevoked):
            watched.revocations.append(event)
        elif isinstance(event, RunAdmitted) or (isinstance(event, RunHeld) and watched.outcome is None):
            # A late "held" never overrides an admission: admission is final.
            watched.outcome = event
        watched.changed.set()
