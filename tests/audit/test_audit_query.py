"""``audit.query``: filters, newest first, cursor pagination, and clear errors for bad requests."""

from datetime import timedelta

from audit_harness import now, publish, record, running_audit
from fixtures.waiting import wait_for_async
from nats.aio.client import Client
from nats.js import JetStreamContext

from grantline.contract.audit import AuditAction, AuditQueryReply, AuditQueryRequest
from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.runtime.nats.request_reply import request


async def _query(nc: Client, **filters: object) -> AuditQueryReply:
    reply = await request(nc, "audit.query", AuditQueryRequest(**filters), AuditQueryReply)  # type: ignore[arg-type]
    assert isinstance(reply, AuditQueryReply), reply
    return reply


async def _all_pages(nc: Client, **filters: object) -> list[str]:
    ids: list[str] = []
    cursor = None
    while True:
        reply = await _query(nc, cursor=cursor, **filters)
        ids += [str(item.record.id) for item in reply.records]
        if reply.next_cursor is None:
            return ids
        cursor = reply.next_cursor


async def test_queries_filter_page_newest_first_and_find_every_token_use_of_a_run(
    nats_url: str, database_url: str, js: JetStreamContext, nats_client: Client
) -> None:
    t0 = now() - timedelta(hours=1)
    run_uses = [
        record(run_id="run-7", app_id="gmail", user_id="alice", tool=f"tool-{i}", occurred_at=t0)
        for i in range(7)
    ]
    others = [
        record(action=AuditAction.CONNECTION_GRANTED, user_id="alice", connection_id="conn-2"),
        record(action=AuditAction.CONNECTION_REVOKED, user_id="bob", provider="github"),
        record(run_id="run-8", user_id="bob", app_id="github_app", provider="github"),
        record("globex", run_id="run-7"),  # the same run id in another tenant is not acme's
    ]
    async with running_audit(nats_url, database_url):
        await publish(js, run_uses[:4] + others + run_uses[4:])
        await wait_for_async(lambda: _stored(database_url, len(run_uses) + len(others)), timeout=15)

        # Every token use of run-7, newest first, across pages of 3.
        pages = await _all_pages(nats_client, tenant_id="acme", run_id="run-7", limit=3)
        assert pages == [str(r.id) for r in reversed(run_uses)]
        first = await _query(nats_client, tenant_id="acme", run_id="run-7", action="token.resolved", limit=3)
        seqs = [item.seq for item in first.records]
        assert seqs == sorted(seqs, reverse=True)
        assert first.records[0].record.tool == "tool-6" and first.next_cursor is not None

        assert len(await _all_pages(nats_client, tenant_id="acme", user_id="alice")) == 8
        assert await _all_pages(nats_client, tenant_id="acme", connection_id="conn-2") == [str(others[0].id)]
        assert await _all_pages(nats_client, tenant_id="acme", provider="github") == [
            str(others[2].id),
            str(others[1].id),
        ]
        assert await _all_pages(nats_client, tenant_id="acme", app_id="gmail") == [
            str(r.id) for r in reversed(run_uses)
        ]
        family = await _all_pages(nats_client, tenant_id="acme", action="connection.*")
        assert family == [str(others[1].id), str(others[0].id)]
        # Time range on occurred_at: the run's uses happened an hour ago, the others just now.
        recent = await _all_pages(nats_client, tenant_id="acme", since=t0 + timedelta(minutes=30))
        assert set(recent) == {str(r.id) for r in others[:3]}
        assert len(await _all_pages(nats_client, tenant_id="acme", until=t0 + timedelta(seconds=1))) == 7
        assert await _all_pages(nats_client, tenant_id="globex", run_id="run-7") == [str(others[3].id)]

        # Errors are replies: another tenant's cursor, a malformed filter.
        reply = await request(
            nats_client,
            "audit.query",
            AuditQueryRequest(tenant_id="globex", cursor=first.next_cursor),
            AuditQueryReply,
        )
        assert isinstance(reply, ErrorReply) and reply.error.code == ErrorCode.INVALID_REQUEST
        assert "acme" not in reply.error.message
        malformed = AuditQueryRequest(tenant_id="acme", action="Not An Action")
        bad = await request(nats_client, "audit.query", malformed, AuditQueryReply)
        assert isinstance(bad, ErrorReply) and bad.error.code == ErrorCode.INVALID_REQUEST


async def _stored(database_url: str, expected: int) -> bool:
    from audit_harness import ledger_sessions
    from sqlalchemy import text

    async with ledger_sessions(database_url) as (engine, _), engine.connect() as conn:
        return int((await conn.execute(text("SELECT count(*) FROM audit.ledger"))).scalar_one()) == expected
