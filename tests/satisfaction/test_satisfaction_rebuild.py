"""``grantline satisfaction rebuild``: the mirror rebuilt from the CONNECTIONS stream equals the live one."""

import asyncio
from datetime import datetime

from fixtures.waiting import wait_for_async
from nats.aio.client import Client
from satisfaction_harness import TENANT, at, granted, idle, make_service, publish, revoked, running
from sqlalchemy import delete, select, update
from typer.testing import CliRunner

from grantline.cli.main import app as cli
from grantline.contract import ConnectionExpiring, ReauthRequired, TokenRefreshed, WebhookReceived
from grantline.runtime.service_runtime import ServiceRuntime
from grantline.satisfaction.adapters.mirror_repository import all_records
from grantline.satisfaction.adapters.tables import app_user_connect, connection_mirror


async def _snapshot(runtime: ServiceRuntime) -> tuple[list[object], list[tuple[object, ...]]]:
    async with runtime.driver_transaction(wake_relay=False) as conn:
        records = await all_records(conn)
    async with runtime.sessions() as session:
        view = (
            await session.execute(
                select(app_user_connect).order_by(
                    app_user_connect.c.tenant_id, app_user_connect.c.owner, app_user_connect.c.provider
                )
            )
        ).all()
    return list(records), [tuple(row) for row in view]


def _run_cli(nats_url: str, database_url: str) -> str:
    # The test NATS is plaintext on loopback, which production (the default environment) refuses.
    env = {
        "GRANTLINE_NATS_URL": nats_url,
        "GRANTLINE_DATABASE_URL": database_url,
        "GRANTLINE_ENVIRONMENT": "test",
    }
    result = CliRunner().invoke(cli, ["satisfaction", "rebuild"], env=env)
    assert result.exit_code == 0, result.output
    return result.output


async def test_rebuilt_mirror_equals_the_live_one(
    nats_url: str, database_url: str, nats_client: Client
) -> None:
    service = make_service(nats_url, database_url, connection_workers=4)
    history = [
        granted("c-g1", scopes=["a"], when=1, account="alice@example.com"),
        granted("c-g2", scopes=["a", "b"], when=2, account="alice+2@example.com"),
        TokenRefreshed(
            tenant_id=TENANT, connection_id="c-g1", owner="user:alice", provider="google", occurred_at=at(3)
        ),
        revoked("c-g2", when=4),
        granted("c-g2", scopes=["a"], when=3),  # older than the revocation: must not reconnect it
        granted("c-gh", user="bob", provider="github", when=5, account="bob-gh"),
        ReauthRequired(
            tenant_id=TENANT,
            connection_id="c-gh",
            owner="user:bob",
            provider="github",
            reason="invalid_grant",
            occurred_at=at(6),
        ),
        granted(
            "c-gh",
            user="bob",
            provider="github",
            scopes=["repo"],
            when=7,
            reauthorized=True,
            account="bob-gh",
        ),
        granted("w-sf", user="workspace", provider="salesforce", when=8, shared_fallback=True),
        granted("c-sl", user="carol", provider="slack", when=9, account="U123"),
        WebhookReceived(
            tenant_id=TENANT,
            provider="slack",
            kind="tokens_revoked",
            account="U123",
            verified=True,
            received_at=at(10),
            occurred_at=at(10),
        ),
        WebhookReceived(
            tenant_id=TENANT,
            provider="github",
            kind="authorization_revoked",
            account="bob-gh",
            verified=False,
            received_at=at(11),
            occurred_at=at(11),
        ),
        ConnectionExpiring(
            tenant_id=TENANT, connection_id="c-g1", owner="user:alice", provider="google", expires_at=at(99)
        ),
        granted("c-other", user="alice", provider="google", tenant_id="tenant-b", when=12),
    ]
    async with running(service):
        # Webhooks name an account, so they can only be matched to connections already mirrored: like
        # real provider webhooks, they come after the grant has been applied.
        webhooks = [e for e in history if isinstance(e, WebhookReceived)]
        for event in [e for e in history if e not in webhooks]:
            await publish(nats_client, event)
        await wait_for_async(lambda: idle(service), timeout=10)
        for event in webhooks:
            await publish(nats_client, event)
        await publish(nats_client, history[0], msg_id="replay")  # a redelivered grant
        await wait_for_async(lambda: idle(service), timeout=10)
        live = await _snapshot(service)
        assert len(live[0]) == 6

        # Damage the live mirror so the rebuild has something to repair.
        async with service.transaction() as session:
            await session.execute(
                delete(connection_mirror).where(connection_mirror.c.connection_id == "w-sf")
            )
            await session.execute(update(connection_mirror).values(connected=True))
        output = await asyncio.to_thread(_run_cli, nats_url, database_url)
        assert "6 connections from 15 events" in output
        rebuilt = await _snapshot(service)
        assert [r for r in rebuilt[0] if r not in live[0]] == []  # the differing records, if any
        assert rebuilt == live

    by_id = {r.row.connection_id: r for r in live[0]}  # type: ignore[attr-defined]
    assert not by_id["c-g2"].row.connected and by_id["c-g2"].last_reason == "user"
    assert by_id["c-gh"].row.connected and by_id["c-gh"].row.scopes == frozenset({"repo"})
    assert not by_id["c-sl"].row.connected and by_id["c-sl"].last_event_kind == "webhook"
    assert isinstance(by_id["c-g1"].row.last_event_at, datetime)
    view = {(row[0], row[1], row[3]): row for row in live[1]}
    assert view[(TENANT, "user:alice", "google")][4:6] == (True, "c-g1")  # connected, through c-g1
    assert view[(TENANT, "user:alice", "google")][2] == "alice"  # user_id
