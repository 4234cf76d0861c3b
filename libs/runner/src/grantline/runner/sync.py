"""The runner client for code without an event loop: the async client running on a loop thread of its own.

Every method blocks until the async client's call returns and raises what it raises, so the two read
the same; ``revocations`` is a plain iterator. One ``SyncRunnerClient`` per process, like the async one.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from grantline.contract.connect_links import DEFAULT_LINK_SECONDS, ConnectLinkReply
from grantline.contract.runs import (
    RequirementSpec,
    RunAdmitted,
    RunConnectionRevoked,
    SkillRequirements,
    StageRequirements,
    Trigger,
)
from grantline.contract.satisfaction import SatisfactionReport
from grantline.contract.vault import ResolveReply
from grantline.runner.client import RunnerClient
from grantline.runner.watched_runs import RunOutcome

T = TypeVar("T")


class _LoopThread:
    """An event loop running in a daemon thread, taking coroutines from other threads."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="grantline-runner", daemon=True)
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class SyncRunnerClient:
    """``RunnerClient`` with blocking methods. Open with ``SyncRunnerClient.connect(...)``; use it as a
    context manager or call ``close``."""

    def __init__(self, client: RunnerClient, loop: _LoopThread) -> None:
        self._client = client
        self._loop = loop

    @classmethod
    def connect(
        cls,
        servers: str | list[str],
        runner_id: str,
        runner_secret: str,
        *,
        timeout: float = 10.0,
        **options: Any,
    ) -> SyncRunnerClient:
        """Connect as the runner identity ``runner_id``; ``options`` go to ``nats.connect``."""
        loop = _LoopThread()
        try:
            client = loop.run(
                RunnerClient.connect(servers, runner_id, runner_secret, timeout=timeout, **options)
            )
        except BaseException:
            loop.stop()
            raise
        return cls(client, loop)

    @property
    def client(self) -> RunnerClient:
        """The async client underneath (its methods must run on this client's loop)."""
        return self._client

    def request_run(
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
        """See ``RunnerClient.request_run``."""
        return self._loop.run(
            self._client.request_run(
                tenant_id,
                run_id,
                user_id,
                app_id,
                requirements,
                skills,
                trigger,
                is_test,
                stages=stages,
                timeout=timeout,
            )
        )

    def wait_until_admitted(self, run_id: str, timeout: float | None = None) -> RunAdmitted:
        """See ``RunnerClient.wait_until_admitted``."""
        return self._loop.run(self._client.wait_until_admitted(run_id, timeout))

    def check(
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
        """See ``RunnerClient.check``."""
        return self._loop.run(
            self._client.check(
                tenant_id, user_id, requirements, skills, stages=stages, stage=stage, timeout=timeout
            )
        )

    def grant(self, run_id: str) -> str:
        """See ``RunnerClient.grant``."""
        return self._client.grant(run_id)

    def renew_grant(self, run_id: str, *, timeout: float | None = None) -> str:
        """See ``RunnerClient.renew_grant``."""
        return self._loop.run(self._client.renew_grant(run_id, timeout=timeout))

    def resolve(
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
        """See ``RunnerClient.resolve``."""
        return self._loop.run(
            self._client.resolve(
                run_id,
                provider,
                app=app,
                tool=tool,
                scopes=scopes,
                grant=grant,
                timeout=timeout,
                connection_id=connection_id,
                account=account,
            )
        )

    def revocations(self, run_id: str) -> Iterator[RunConnectionRevoked]:
        """See ``RunnerClient.revocations``: blocks for the next one; ends at ``finish``."""
        iterator = self._client.revocations(run_id)

        async def following() -> RunConnectionRevoked:
            return await anext(iterator)

        while True:
            try:
                yield self._loop.run(following())
            except StopAsyncIteration:
                return

    def connect_link(
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
        """See ``RunnerClient.connect_link``."""
        return self._loop.run(
            self._client.connect_link(
                tenant_id,
                user_id,
                providers,
                run_id=run_id,
                expires_in=expires_in,
                provider_apps=provider_apps,
                timeout=timeout,
            )
        )

    def cancel(self, run_id: str, tenant_id: str | None = None) -> None:
        """See ``RunnerClient.cancel``."""
        self._loop.run(self._client.cancel(run_id, tenant_id))

    def finish(self, run_id: str, tenant_id: str | None = None) -> None:
        """See ``RunnerClient.finish``."""
        self._loop.run(self._client.finish(run_id, tenant_id))

    def close(self) -> None:
        """Stop listening, close the connection, stop the loop thread."""
        try:
            self._loop.run(self._client.close())
        finally:
            self._loop.stop()

    def __enter__(self) -> SyncRunnerClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
