"""A small client for app runners: request a run and await admission, resolve tokens, hear revocations.

One ``RunnerClient`` per process and NATS connection. For each tenant it serves it listens (core NATS)
to ``runs.admitted.<tenant>``, ``runs.held.<tenant>`` and ``runs.connection_revoked.<tenant>`` and routes
each event to the run it names, so any number of runs can be awaited at once. It subscribes before it
publishes, so an answer cannot overtake the subscription; outcomes and revocations of the runs it
requested are kept until ``finish``. Knowing its runner id, it also pulls the runner's durable consumer
(durable.py), which holds what was published while it was reconnecting. An admitted run's grant is
kept too, and ``resolve`` presents it: the vault answers only inside the grant (docs/runners.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, TypeVar

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from pydantic import BaseModel, SecretStr

from grantline.contract.connect_links import (
    DEFAULT_LINK_SECONDS,
    SUBJECT_CONNECT_LINK,
    ConnectLinkReply,
    ConnectLinkRequest,
)
from grantline.contract.envelope import tenant_scoped
from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.contract.run_grants import unverified_claims
from grantline.contract.runner_identities import runner_inbox_prefix
from grantline.contract.runs import (
    RequirementSpec,
    RunAdmitted,
    RunConnectionRevoked,
    RunFinished,
    RunRequested,
    SkillRequirements,
    StageRequirements,
    Trigger,
)
from grantline.contract.satisfaction import (
    SUBJECT_CHECK,
    SUBJECT_RENEW_GRANT,
    RenewGrantReply,
    RenewGrantRequest,
    SatisfactionCheckRequest,
    SatisfactionReport,
)
from grantline.contract.vault import SUBJECT_RESOLVE, ResolveReply, ResolveRequest
from grantline.nats_fixes import install as install_nats_fixes
from grantline.runner.bus import ask_until_answered, publish_event
from grantline.runner.durable import OutcomeFollower
from grantline.runner.watched_runs import FOLLOWED, RunOutcome, WatchedRun, WatchedRuns, wait

ReplyT = TypeVar("ReplyT", bound=BaseModel)

# A grant with less than this share of its lifetime left is renewed before it is presented.
RENEW_WHEN_LEFT = 0.2


def _expiring(grant: str) -> bool:
    claims = unverified_claims(grant)
    issued, expires = claims.get("iat"), claims.get("exp")
    if not isinstance(issued, int) or not isinstance(expires, int):
        return False
    return expires - time.time() < RENEW_WHEN_LEFT * (expires - issued)


class ResolveError(Exception):
    """``vault.resolve`` answered with an error; ``code`` is the DESIGN error code (``not_connected``...)."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code.value}: {message}")
        self.code = code
        self.message = message


class RunnerClient:
    """Request runs, await their admission, resolve tokens for their tool calls, hear revocations."""

    def __init__(
        self,
        nc: Client,
        *,
        runner_id: str | None = None,
        timeout: float = 10.0,
        attempt_timeout: float = 5.0,
    ) -> None:
        """``runner_id``: the identity ``nc`` connected as; given, the client also pulls the runner's
        durable consumer of outcomes, so that an outcome or revocation published while it reconnects
        still reaches its run. ``timeout``: how long a call may take in all; ``attempt_timeout``: how
        long one request waits for its answer before it is sent again (while NATS reconnects, say)."""
        self._nc = nc
        self._timeout = timeout
        self._attempt_timeout = attempt_timeout
        self._owns_connection = False
        self._runs = WatchedRuns()
        self._follower = OutcomeFollower(nc, runner_id, self._runs.route) if runner_id else None
        # None until the first run is followed; then whether the consumer was found (asked once).
        self._following: bool | None = None
        self._subscriptions: dict[str, list[Subscription]] = {}
        self._listening = asyncio.Lock()

    @classmethod
    async def connect(
        cls,
        servers: str | list[str],
        runner_id: str,
        runner_secret: str,
        *,
        timeout: float = 10.0,
        **options: Any,
    ) -> RunnerClient:
        """Connect to NATS as the runner identity ``runner_id`` (its inbox prefix set for you) and
        return a client that closes the connection on ``close``. ``options`` go to ``nats.connect``
        (``tls``, ``tls_handshake_first``, ``max_reconnect_attempts``, ...)."""
        options.setdefault("max_reconnect_attempts", -1)  # a runner outlives a NATS restart
        # Without them, one TLS handshake that fails (a NATS pod stopping mid-handshake) would leave
        # the runner waiting forever instead of reconnecting, and the flush after subscribing to a
        # tenant's run events could return before the server had them (grantline.nats_fixes).
        install_nats_fixes()
        nc = await nats.connect(
            servers,
            user=runner_id,
            password=runner_secret,
            inbox_prefix=runner_inbox_prefix(runner_id),
            **options,
        )
        client = cls(nc, runner_id=runner_id, timeout=timeout)
        client._owns_connection = True
        return client

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
        watched = self._runs.setdefault(run_id, WatchedRun(tenant_id))
        await publish_event(self._nc, event)
        return await wait(run_id, watched, lambda o: o is not None, timeout or self._timeout)

    async def wait_until_admitted(self, run_id: str, timeout: float | None = None) -> RunAdmitted:
        """Wait until a run this client requested is admitted (a held run resumes after the user connects)."""
        watched = self._runs.get(run_id)
        if watched is None:
            raise KeyError(f"run {run_id!r} was not requested through this client")
        outcome = await wait(run_id, watched, lambda o: isinstance(o, RunAdmitted), timeout or self._timeout)
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
        stage: str | None = None,
        timeout: float | None = None,
    ) -> SatisfactionReport:
        """Whether the user has connected what an app needs, without requesting a run
        (``satisfaction.check.<tenant>``; with ``stage``, what that stage needs); raises
        ``ResolveError`` on an error reply."""
        message = SatisfactionCheckRequest(
            tenant_id=tenant_id,
            user_id=user_id,
            requirements=list(requirements),
            skills=list(skills),
            stages=list(stages),
            stage=stage,
        )
        return await self._ask(tenant_scoped(SUBJECT_CHECK, tenant_id), message, SatisfactionReport, timeout)

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
        reply = await self._ask(
            tenant_scoped(SUBJECT_RENEW_GRANT, watched.tenant_id),
            RenewGrantRequest(grant=SecretStr(current)),
            RenewGrantReply,
            timeout,
            with_secrets=True,
        )
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
        connection_id: str | None = None,
        account: str | None = None,
    ) -> ResolveReply:
        """The acting user's token for a tool call of an admitted run; raises ``ResolveError`` with
        the vault's error code (``forbidden`` outside the run's grant).

        Name the run (admitted through this client), or pass its ``grant`` (admitted elsewhere).
        ``connection_id`` or ``account`` picks one of the user's connections to the provider (another
        shop, site or account); without them the default one answers. The reply's ``settings`` and
        ``api_base_url`` say where that connection's API is.
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
            grant=SecretStr(grant),
            provider=provider,
            app=app,
            tool=tool,
            scopes=list(scopes),
            connection_id=connection_id,
            account=account,
        )
        return await self._ask(
            tenant_scoped(SUBJECT_RESOLVE, tenant_id), message, ResolveReply, timeout, with_secrets=True
        )

    async def connect_link(
        self,
        tenant_id: str,
        user_id: str,
        providers: Sequence[str],
        *,
        run_id: str | None = None,
        expires_in: int = DEFAULT_LINK_SECONDS,
        provider_apps: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> ConnectLinkReply:
        """A fresh connect link for a user who lacks a connection (``gateway.connect_link.<tenant>``),
        offering only ``providers``; a held run's ``connect_links`` already carry one each.
        ``provider_apps`` ({provider: app name}) sends new connections of those providers through the
        tenant's named apps. Raises ``ResolveError`` on an error reply (an unknown provider or app,
        another tenant)."""
        message = ConnectLinkRequest(
            tenant_id=tenant_id,
            user_id=user_id,
            providers=list(providers),
            expires_in=expires_in,
            run_id=run_id,
            provider_apps=dict(provider_apps or {}),
        )
        return await self._ask(
            tenant_scoped(SUBJECT_CONNECT_LINK, tenant_id), message, ConnectLinkReply, timeout
        )

    async def cancel(self, run_id: str, tenant_id: str | None = None) -> None:
        """Give a run up (a held run the user will not connect for): it is never admitted later, and
        whoever awaits its admission gets ``RunCancelled``. Publishes ``runs.finished`` with
        ``cancelled``, so an admitted run's grant stops resolving too."""
        await self._end(run_id, tenant_id, cancelled=True)

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
        await self._end(run_id, tenant_id, cancelled=False)

    async def _end(self, run_id: str, tenant_id: str | None, *, cancelled: bool) -> None:
        watched = self._runs.pop(run_id, None)
        tenant = tenant_id or (watched.tenant_id if watched else None)
        if tenant is None:
            raise KeyError(f"run {run_id!r} was not requested through this client; pass tenant_id")
        event = RunFinished(tenant_id=tenant, run_id=run_id, cancelled=cancelled)
        await publish_event(self._nc, event)
        if watched is not None:
            watched.finished = True
            watched.changed.set()

    async def close(self) -> None:
        """Stop listening (and close the NATS connection if ``connect`` opened it)."""
        for subscriptions in self._subscriptions.values():
            for subscription in subscriptions:
                with contextlib.suppress(Exception):
                    await subscription.unsubscribe()
        self._subscriptions.clear()
        if self._follower is not None:
            await self._follower.stop()
        if self._owns_connection:
            # A connection whose server is gone may fail to flush what it buffered while reconnecting.
            with contextlib.suppress(Exception):
                await self._nc.close()

    async def _ask(
        self,
        subject: str,
        message: BaseModel,
        reply_model: type[ReplyT],
        timeout: float | None,
        *,
        with_secrets: bool = False,
    ) -> ReplyT:
        """A request sent again while no service answers (``ask_until_answered``); an error reply
        becomes a ``ResolveError``."""
        reply = await ask_until_answered(
            self._nc,
            subject,
            message,
            reply_model,
            timeout=timeout or self._timeout,
            attempt_timeout=self._attempt_timeout,
            with_secrets=with_secrets,
        )
        if isinstance(reply, ErrorReply):
            raise ResolveError(reply.error.code, reply.error.message)
        return reply

    async def _listen(self, tenant_id: str) -> None:
        async with self._listening:
            if self._follower is not None and self._following is None:
                self._following = await self._follower.start(min(self._attempt_timeout, 2.0))
            if tenant_id in self._subscriptions:
                return
            self._subscriptions[tenant_id] = [
                await self._nc.subscribe(event.subject_for(tenant_id), cb=self._on_message)
                for event in FOLLOWED
            ]
            # The server must know the subscriptions before the request goes out.
            await self._nc.flush()

    async def _on_message(self, msg: Msg) -> None:
        self._runs.route(msg.data)
