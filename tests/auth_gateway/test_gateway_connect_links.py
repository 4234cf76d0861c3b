"""Just-in-time connection (Aitroop's path B): a held run carries a connect link per missing requirement.

The real satisfaction service holds the run and asks the real gateway for the links
(``gateway.connect_link.<tenant>``); the runner shows the link, the user connects through it, and the
run is admitted by itself. A link's connect session offers only what is missing, is single-use and
is confirmed in the browser like every connect link; a runner may ask for a fresh one, and may
cancel a held run so that it is never admitted.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from fixtures.nats_fuzz import hostile_requests, schema_fingerprint
from fixtures.waiting import wait_for_async
from gateway_flow import RETURN_TO, authorize, callback, confirm_connect_link, setup_app, start
from gateway_support import PUBLIC_URL, bearer, new_user
from nats.aio.client import Client
from sqlalchemy import text

from grantline.contract import RunAdmitted, RunHeld
from grantline.contract.connect_links import ConnectLinkReply, ConnectLinkRequest
from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.runner import ResolveError, RunCancelled, RunnerClient
from grantline.runtime.nats.request_reply import request

APP = "jit-assistant"


def _token(url: str) -> str:
    return parse_qs(urlsplit(url).query)["connect_session"][0]


async def _satisfaction_status(stack, tenant: str, run_id: str) -> str | None:
    async with stack.runtime.sessions() as session:
        return await session.scalar(
            text("SELECT status FROM satisfaction.runs WHERE tenant_id = :t AND run_id = :r"),
            {"t": tenant, "r": run_id},
        )


async def test_held_run_carries_a_link_that_connects_what_is_missing_and_resumes_it(
    full_stack, nats_client: Client
) -> None:
    await setup_app(full_stack)
    user, run_id = new_user(), f"run-{uuid.uuid4().hex[:8]}"
    runner = RunnerClient(nats_client, timeout=20)
    try:
        held = await runner.request_run(full_stack.tenant_a, run_id, user, APP, ["sandbox"])
        assert isinstance(held, RunHeld), held
        (link,) = held.connect_links
        assert (link.requirement_type, link.requirement_id, link.providers) == (
            "specific",
            "sandbox",
            ["sandbox"],
        )
        assert link.url.startswith(f"{PUBLIC_URL}/connect?connect_session=")
        assert link.url not in repr(held)  # the link's token stays out of logs
        token = _token(link.url)

        # In the browser: opening the link signs nobody in (the user confirms who they connect as,
        # by POST), and the connect page then offers only what is missing.
        await confirm_connect_link(full_stack, link.url)
        page = await full_stack.client.get("/connect")
        assert page.status_code == 200, page.text
        assert re.findall(r'data-provider="([^"]+)"', page.text) == ["sandbox"]
        assert (await full_stack.client.get("/connect/authorize/github")).status_code == 404

        # The link's session offers only the missing provider, and acts for its user only.
        providers = await full_stack.client.get("/v1/providers", headers=bearer(token))
        assert providers.status_code == 200, providers.text
        assert [p["id"] for p in providers.json()["providers"]] == ["sandbox"]
        other = await full_stack.client.post(
            "/v1/connections/initiate",
            headers=bearer(token),
            json={"user_id": user, "provider": "github", "return_to": RETURN_TO},
        )
        assert other.status_code == 404, other.text
        foreign = await full_stack.client.post(
            "/v1/connections/initiate",
            headers=bearer(token),
            json={"user_id": "someone-else", "provider": "sandbox", "return_to": RETURN_TO},
        )
        assert foreign.status_code == 403, foreign.text

        # The user connects through the link's session; the held run is admitted by itself.
        started = await start(full_stack, user, key=token)
        outcome = await callback(full_stack, await authorize(full_stack, started["authorize_url"]))
        assert outcome["status"] == "connected", outcome
        admitted = await runner.wait_until_admitted(run_id)
        assert isinstance(admitted, RunAdmitted) and admitted.resumed
    finally:
        await runner.close()


async def test_runner_asks_for_a_fresh_link_for_its_tenant_only(full_stack, nats_client: Client) -> None:
    await setup_app(full_stack)
    runner = RunnerClient(nats_client, timeout=10)
    user = new_user()
    fresh = await runner.connect_link(full_stack.tenant_a, user, ["sandbox"], expires_in=300)
    assert fresh.providers == ["sandbox"] and fresh.url.startswith(f"{PUBLIC_URL}/connect?")
    assert (
        await full_stack.client.get("/v1/connections", headers=bearer(_token(fresh.url)))
    ).status_code == 200

    with pytest.raises(ResolveError) as unknown:
        await runner.connect_link(full_stack.tenant_a, user, ["no-such-provider"])
    assert unknown.value.code == ErrorCode.NOT_FOUND

    # The subject names the tenant (NATS lets a runner publish on its own tenants' subjects only); a
    # body naming another tenant is refused and mints nothing.
    smuggled = ConnectLinkRequest(tenant_id=full_stack.tenant_b, user_id=user, providers=["sandbox"])
    reply = await request(
        nats_client, f"gateway.connect_link.{full_stack.tenant_a}", smuggled, ConnectLinkReply, timeout=10
    )
    assert isinstance(reply, ErrorReply) and reply.error.code == ErrorCode.FORBIDDEN
    async with full_stack.runtime.sessions() as session:
        minted = await session.scalar(
            text("SELECT count(*) FROM gateway.connect_sessions WHERE tenant_id = :t"),
            {"t": full_stack.tenant_b},
        )
    assert minted == 0
    # Malformed requests get an error reply too.
    raw = await nats_client.request(
        f"gateway.connect_link.{full_stack.tenant_a}", b'{"providers": []}', timeout=10
    )
    assert raw.data.startswith(b'{"error"') and b"invalid_request" in raw.data


async def test_a_cancelled_held_run_is_never_admitted(full_stack, nats_client: Client) -> None:
    await setup_app(full_stack)
    user = new_user()
    cancelled = f"run-{uuid.uuid4().hex[:8]}"
    runner = RunnerClient(nats_client, timeout=20)
    admissions: list[bytes] = []

    async def heard(msg) -> None:
        admissions.append(msg.data)

    watch = await nats_client.subscribe(f"runs.admitted.{full_stack.tenant_a}", cb=heard)
    try:
        held = await runner.request_run(full_stack.tenant_a, cancelled, user, APP, ["sandbox"])
        assert isinstance(held, RunHeld)
        # Whoever awaits the run's admission hears that it was cancelled.
        waiting = asyncio.create_task(runner.wait_until_admitted(cancelled))
        await asyncio.sleep(0)  # the waiter is parked on the run (a yield, not a wait for work)
        await runner.cancel(cancelled)
        with pytest.raises(RunCancelled):
            await waiting

        async def finished() -> bool:
            return await _satisfaction_status(full_stack, full_stack.tenant_a, cancelled) == "finished"

        await wait_for_async(finished, timeout=20)
        # The user connects anyway: a new run is admitted, the cancelled one is not.
        started = await start(full_stack, user)
        await callback(full_stack, await authorize(full_stack, started["authorize_url"]))

        later_outcome = await _first_admitted(runner, full_stack.tenant_a, user)
        assert isinstance(later_outcome, RunAdmitted)
        assert await _satisfaction_status(full_stack, full_stack.tenant_a, cancelled) == "finished"
        assert not any(cancelled.encode() in data for data in admissions)
    finally:
        await watch.unsubscribe()
        await runner.close()


async def _first_admitted(runner: RunnerClient, tenant: str, user: str) -> RunAdmitted:
    """Request runs until one is admitted (the grant reaches satisfaction in its own time)."""

    async def attempt() -> RunAdmitted | None:
        run_id = f"run-{uuid.uuid4().hex[:8]}"
        outcome = await runner.request_run(tenant, run_id, user, APP, ["sandbox"])
        if isinstance(outcome, RunAdmitted):
            return outcome
        await runner.cancel(run_id)
        return None

    return await wait_for_async(attempt, timeout=20, interval=0.2)


@pytest.mark.fuzz
@pytest.mark.timeout(300)
async def test_hostile_connect_link_requests_get_error_replies_and_mint_nothing(
    stack, nats_client: Client, database_url: str
) -> None:
    async def relayed() -> bool:  # the set-up's audit records leave the outbox first
        async with stack.runtime.sessions() as session:
            return await session.scalar(text("SELECT count(*) FROM gateway.outbox")) == 0

    await wait_for_async(relayed, timeout=20)
    before = schema_fingerprint(database_url, "gateway")
    subject = f"gateway.connect_link.{stack.tenant_a}"
    failures = await hostile_requests(nats_client, [(subject, ConnectLinkRequest)])
    assert not failures, "\n".join(failures[:20])
    assert schema_fingerprint(database_url, "gateway") == before
