"""``$SYS.REQ.USER.AUTH``: the server asks whether a connecting client is a runner.

Every replica joins one queue group, so each request is answered once. The request is a JWT the
server signed; the answer a JWT we sign (service/callout.py). One short read-only transaction per
connection attempt looks the runner up, and one JetStream request declares (or finds) the runner's
consumer of outcomes (adapters/outcome_consumers.py).
"""

from __future__ import annotations

import nkeys

from grantline.runner_auth.adapters import runner_repository as repository
from grantline.runner_auth.adapters.outcome_consumers import OutcomeConsumers
from grantline.runner_auth.domain.runner import Runner
from grantline.runner_auth.service.callout import CalloutAuthorizer
from grantline.runtime.nats.request_reply import RequestSubscription
from grantline.runtime.service_runtime import ServiceRuntime

AUTH_CALLOUT_SUBJECT = "$SYS.REQ.USER.AUTH"
QUEUE = "runner-auth.callout"


def serve_auth_callout(runtime: ServiceRuntime, issuer: nkeys.KeyPair, *, user_jwt_ttl_seconds: int) -> None:
    """Answer the server's auth callout requests while the service runs."""

    async def lookup(runner_id: str) -> Runner | None:
        async with runtime.single_statement(wake_relay=False) as conn:
            return await repository.get_runner(conn, runner_id)

    async def declare_consumer(runner: Runner) -> None:
        # Before the answer: the consumer exists by the time the runner's connection does.
        await OutcomeConsumers(runtime.nats).declare(runner)

    authorizer = CalloutAuthorizer(
        issuer, lookup=lookup, user_jwt_ttl_seconds=user_jwt_ttl_seconds, on_authorised=declare_consumer
    )

    async def answer(data: bytes, _headers: object, _subject: str) -> tuple[bytes, str]:
        response = await authorizer.answer(data.decode(errors="replace"))
        if response is None:
            # An empty reply is a refusal to the server ("no reason supplied").
            return b"", "rejected"
        return response, "ok"

    subscription = RequestSubscription(
        service="runner-auth", subject=AUTH_CALLOUT_SUBJECT, answer=answer, queue=QUEUE, max_in_flight=64
    )

    @runtime.on_start
    async def subscribe() -> None:
        await subscription.start(runtime.nats)

    @runtime.on_stop
    async def unsubscribe() -> None:
        await subscription.stop()
