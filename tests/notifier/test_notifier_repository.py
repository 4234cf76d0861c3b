"""The notifier's SQL on psycopg, each in a pipelined transaction like ``runtime.driver_transaction``:
what the end-to-end tests do not reach (the endpoint cap, a filter by endpoint, a batch naming one
event twice, leases, a delete of another tenant's endpoint)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import psycopg

from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.contract.notifier import CreateEndpointRequest, EndpointCreated
from grantline.notifier.adapters import repository
from grantline.notifier.adapters.sealing import SecretSealer
from grantline.notifier.service import endpoints
from grantline.runtime.db.driver import DriverConnection


@asynccontextmanager
async def unit_of_work(database_url: str) -> AsyncIterator[DriverConnection]:
    # As DriverPool.transaction: pipeline mode, commit at the end (results are there only once read).
    async with await psycopg.AsyncConnection.connect(database_url) as conn, conn.pipeline():
        yield conn
        await conn.commit()


async def new_endpoint(database_url: str, tenant_id: str, endpoint_id: str, types: list[str]) -> None:
    async with unit_of_work(database_url) as conn:
        stored = await repository.insert_endpoint(
            conn,
            endpoint_id=endpoint_id,
            tenant_id=tenant_id,
            url="https://example.com/hooks",
            description="",
            event_types=types,
            sealed_secret=b"\x00sealed\xff",
        )
    assert (stored.endpoint_id, stored.event_types) == (endpoint_id, types)
    assert stored.created_at.tzinfo is not None


def delivery(endpoint_id: str, event_id: str, body: bytes = b'{"type":"x"}') -> dict[str, object]:
    return {
        "delivery_id": f"msg_{endpoint_id}_{event_id}",
        "tenant_id": "t-1",
        "endpoint_id": endpoint_id,
        "event_id": event_id,
        "event_type": "connection.granted",
        "connection_id": "c-1",
        "body": body,
    }


async def test_the_endpoint_cap_counts_the_tenants_own_and_a_delete_finds_only_its_own(
    database_url: str,
) -> None:
    sealer = SecretSealer.from_setting(None, environment="test")

    async def create(tenant_id: str) -> EndpointCreated | ErrorReply:
        request = CreateEndpointRequest(tenant_id=tenant_id, url="https://example.com/h")
        async with unit_of_work(database_url) as conn:
            return await endpoints.create_endpoint(
                conn, sealer, request, allow_private=False, max_endpoints=2
            )

    first, second = await create("t-1"), await create("t-1")
    assert isinstance(first, EndpointCreated) and isinstance(second, EndpointCreated)
    refused = await create("t-1")
    assert isinstance(refused, ErrorReply) and refused.error.code == ErrorCode.CONFLICT
    assert isinstance(await create("t-2"), EndpointCreated)

    async with unit_of_work(database_url) as conn:
        assert not await repository.delete_endpoint(conn, "t-2", first.endpoint.endpoint_id)
        assert await repository.delete_endpoint(conn, "t-1", first.endpoint.endpoint_id)
        assert not await repository.delete_endpoint(conn, "t-1", first.endpoint.endpoint_id)
        assert await repository.count_endpoints(conn, "t-1") == 1
        listed = await repository.list_endpoints(conn, "t-1")
    assert [e.endpoint_id for e in listed] == [second.endpoint.endpoint_id]


async def test_deliveries_fan_out_by_type_once_per_event_and_list_by_endpoint_and_status(
    database_url: str,
) -> None:
    await new_endpoint(database_url, "t-1", "ep_all", [])
    await new_endpoint(database_url, "t-1", "ep_revoked", ["connection.revoked"])
    async with unit_of_work(database_url) as conn:
        assert await repository.endpoints_wanting(conn, "t-1", "connection.granted") == ["ep_all"]
        wanting = await repository.endpoints_wanting(conn, "t-1", "connection.revoked")
        assert sorted(wanting) == ["ep_all", "ep_revoked"]
        assert await repository.endpoints_wanting(conn, "t-2", "connection.revoked") == []
        # One event twice in a batch (a redelivery fetched with the first): queued once.
        twice = delivery("ep_all", "e-1")
        await repository.insert_deliveries(conn, [twice, {**twice, "delivery_id": "msg_again"}])
        await repository.insert_deliveries(conn, [delivery("ep_revoked", "e-2"), delivery("ep_all", "e-2")])

    async with unit_of_work(database_url) as conn:
        all_of_them = await repository.list_deliveries(conn, "t-1", endpoint_id=None, status=None, limit=10)
        by_endpoint = await repository.list_deliveries(
            conn, "t-1", endpoint_id="ep_revoked", status="pending", limit=10
        )
        none = await repository.list_deliveries(conn, "t-1", endpoint_id=None, status="failed", limit=10)
        one = await repository.list_deliveries(conn, "t-1", endpoint_id="ep_all", status=None, limit=1)
    assert sorted(d.delivery_id for d in all_of_them) == [
        "msg_ep_all_e-1",
        "msg_ep_all_e-2",
        "msg_ep_revoked_e-2",
    ]
    assert [d.delivery_id for d in by_endpoint] == ["msg_ep_revoked_e-2"]
    assert (by_endpoint[0].status, by_endpoint[0].attempts, by_endpoint[0].delivered_at) == (
        "pending",
        0,
        None,
    )
    assert none == [] and len(one) == 1


async def test_a_claim_leases_due_deliveries_and_each_outcome_sets_the_next_attempt(
    database_url: str,
) -> None:
    await new_endpoint(database_url, "t-1", "ep_1", [])
    async with unit_of_work(database_url) as conn:
        await repository.insert_deliveries(
            conn,
            [delivery("ep_1", "e-ok", b"\x00ok"), delivery("ep_1", "e-retry"), delivery("ep_1", "e-fail")],
        )
    now = datetime.now(UTC) + timedelta(seconds=1)
    async with unit_of_work(database_url) as conn:
        due = await repository.claim_due(conn, now=now, lease=timedelta(minutes=5), limit=10)
        # Leased: the same moment finds nothing more to claim.
        assert await repository.claim_due(conn, now=now, lease=timedelta(minutes=5), limit=10) == []
    claimed = {d.delivery_id: d for d in due}
    assert sorted(claimed) == ["msg_ep_1_e-fail", "msg_ep_1_e-ok", "msg_ep_1_e-retry"]
    assert claimed["msg_ep_1_e-ok"].body == b"\x00ok"
    assert claimed["msg_ep_1_e-ok"].sealed_secret == b"\x00sealed\xff"
    assert claimed["msg_ep_1_e-ok"].url == "https://example.com/hooks"

    retry_at = now + timedelta(seconds=5)
    async with unit_of_work(database_url) as conn:
        await repository.record_attempt(
            conn, "msg_ep_1_e-ok", succeeded=True, status_code=204, error=None, now=now, retry_at=None
        )
        await repository.record_attempt(
            conn,
            "msg_ep_1_e-retry",
            succeeded=False,
            status_code=503,
            error="x" * 400,
            now=now,
            retry_at=retry_at,
        )
        await repository.record_attempt(
            conn,
            "msg_ep_1_e-fail",
            succeeded=False,
            status_code=None,
            error="refused",
            now=now,
            retry_at=None,
        )
    async with unit_of_work(database_url) as conn:
        rows = await repository.list_deliveries(conn, "t-1", endpoint_id=None, status=None, limit=10)
        assert await repository.claim_due(conn, now=retry_at, lease=timedelta(minutes=5), limit=10) != []
    found = {d.delivery_id: d for d in rows}
    ok, retry, fail = found["msg_ep_1_e-ok"], found["msg_ep_1_e-retry"], found["msg_ep_1_e-fail"]
    assert (ok.status, ok.attempts, ok.last_status_code, ok.next_attempt_at) == ("succeeded", 1, 204, None)
    assert ok.delivered_at == now
    assert (retry.status, retry.next_attempt_at, retry.last_error) == ("pending", retry_at, "x" * 300)
    assert (fail.status, fail.next_attempt_at, fail.delivered_at, fail.last_error) == (
        "failed",
        None,
        None,
        "refused",
    )
