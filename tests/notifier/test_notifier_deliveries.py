"""Notifications out (issue 18 item 9): connection events reach a tenant's real HTTP endpoint, signed
in the Standard Webhooks style, retried with backoff under one webhook-id, visible with their status,
and never carrying a token."""

from __future__ import annotations

import socket
import uuid

import pytest
from fixtures.waiting import wait_for_async
from nats.aio.client import Client
from notifier_harness import make_notifier, receiver
from sqlalchemy import text
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from grantline.contract.audit import AuditAction, AuditRecord
from grantline.contract.connections import ConnectionGranted, ConnectionRevoked
from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.contract.notifier import (
    CreateEndpointRequest,
    DeliveryList,
    EndpointCreated,
    EndpointList,
    ListDeliveriesRequest,
    ListEndpointsRequest,
)
from grantline.contract.registry import encode_message
from grantline.runtime.nats.request_reply import request
from grantline.runtime.public_addresses import is_public_address

TENANT = "tenant-n"
CANARY = "sbx_at_CANARYnotifier0123456789"


async def publish(nc: Client, event, msg_id: str | None = None) -> None:
    await nc.jetstream().publish(
        event.subject(), encode_message(event), headers={"Nats-Msg-Id": msg_id or str(event.id)}
    )


def granted(connection_id: str = "c-1") -> ConnectionGranted:
    # The account and scopes are the connection's details, not the tenant's business in a notification.
    return ConnectionGranted(
        tenant_id=TENANT,
        connection_id=connection_id,
        owner="user:ada",
        provider="github",
        scopes=["repo", CANARY],
        account=CANARY,
    )


async def create(nc: Client, url: str, **extra) -> EndpointCreated:
    reply = await request(
        nc,
        "notifier.endpoints.create",
        CreateEndpointRequest(tenant_id=TENANT, url=url, **extra),
        EndpointCreated,
    )
    assert isinstance(reply, EndpointCreated), reply
    return reply


async def deliveries(nc: Client, **filters) -> DeliveryList:
    reply = await request(
        nc, "notifier.deliveries.list", ListDeliveriesRequest(tenant_id=TENANT, **filters), DeliveryList
    )
    assert isinstance(reply, DeliveryList), reply
    return reply


async def test_a_grant_is_delivered_signed_once_and_listed_as_succeeded(
    nats_url: str, database_url: str, nats_client: Client
) -> None:
    service = make_notifier(nats_url, database_url)
    await service.start()
    try:
        async with receiver() as endpoint:
            created = await create(nats_client, endpoint.url, description="ops")
            secret = created.secret.get_secret_value()
            assert secret.startswith("whsec_")
            listed = await request(
                nats_client, "notifier.endpoints.list", ListEndpointsRequest(tenant_id=TENANT), EndpointList
            )
            assert isinstance(listed, EndpointList) and secret not in listed.model_dump_json()
            async with service.sessions() as session:
                sealed = await session.scalar(text("SELECT sealed_secret FROM notifier.endpoints"))
            assert secret.encode() not in sealed and secret.removeprefix("whsec_").encode() not in sealed

            event = granted()
            await publish(nats_client, event)
            await publish(nats_client, event, msg_id=f"again-{event.id}")  # a redelivery: one delivery

            await wait_for_async(lambda: _succeeded(nats_client, 1), timeout=20)
            (got,) = endpoint.received
            body = Webhook(secret).verify(got.body, got.headers)
            assert body["type"] == "connection.granted"
            assert body["data"] == {
                "tenant_id": TENANT,
                "connection_id": "c-1",
                "provider": "github",
                "user_id": "ada",
                "workspace": False,
                "reauthorized": False,
            }
            assert CANARY not in got.body.decode() and CANARY not in str(got.headers)
            (delivery,) = (await deliveries(nats_client)).deliveries
            assert delivery.delivery_id == got.headers["webhook-id"] and delivery.attempts == 1
            # Another secret does not verify it.
            with pytest.raises(WebhookVerificationError):
                Webhook("whsec_" + "A" * 44).verify(got.body, got.headers)
    finally:
        await service.stop()


async def _succeeded(nc: Client, count: int) -> bool:
    listed = await deliveries(nc, status="succeeded")
    return len(listed.deliveries) >= count


async def test_a_failing_endpoint_is_retried_under_one_id_then_given_up(
    nats_url: str, database_url: str, nats_client: Client
) -> None:
    service = make_notifier(nats_url, database_url, webhook_max_attempts=3)
    await service.start()
    try:
        async with receiver(statuses=[500, 503, 200]) as flaky, receiver(statuses=[500]) as dead:
            await create(nats_client, flaky.url)
            await create(nats_client, dead.url)
            await publish(
                nats_client,
                ConnectionRevoked(
                    tenant_id=TENANT, connection_id="c-2", owner="workspace", provider="slack", reason="admin"
                ),
            )

            async def settled() -> DeliveryList | None:
                listed = await deliveries(nats_client)
                done = [d for d in listed.deliveries if d.status != "pending"]
                return listed if len(done) == 2 else None

            listed = await wait_for_async(settled, timeout=30)
            by_status = {d.status: d for d in listed.deliveries}
            assert by_status["succeeded"].attempts == 3 and by_status["succeeded"].delivered_at is not None
            assert by_status["failed"].attempts == 3 and by_status["failed"].last_status_code == 500
            assert by_status["failed"].next_attempt_at is None
            # Every attempt carried the same webhook-id: the receiver can drop repeats.
            assert len({r.headers["webhook-id"] for r in flaky.received}) == 1 and len(flaky.received) == 3
            assert flaky.received[0].json()["data"]["workspace"] is True
    finally:
        await service.stop()


async def test_an_endpoint_gets_only_the_types_it_asked_for_and_refresh_failures(
    nats_url: str, database_url: str, nats_client: Client
) -> None:
    service = make_notifier(nats_url, database_url)
    await service.start()
    try:
        async with receiver() as endpoint:
            await create(nats_client, endpoint.url, event_types=["connection.refresh_failed"])
            await publish(nats_client, granted("c-3"))
            failed = AuditRecord(
                tenant_id=TENANT,
                actor="vault",
                action=AuditAction.TOKEN_REFRESH_FAILED,
                connection_id="c-3",
                provider="github",
                user_id="ada",
                outcome="failure",
                detail={"error": "invalid_grant"},
            )
            await publish(nats_client, failed)
            await wait_for_async(lambda: _succeeded(nats_client, 1), timeout=20)
            assert [r.json()["type"] for r in endpoint.received] == ["connection.refresh_failed"]
            assert [d.event_type for d in (await deliveries(nats_client)).deliveries] == [
                "connection.refresh_failed"
            ]
    finally:
        await service.stop()


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hooks",
        "https://127.0.0.1/hooks",
        "https://10.1.2.3/hooks",
        "https://169.254.169.254/latest/meta-data",
        "https://[::ffff:10.0.0.1]/hooks",
        "https://localhost/hooks",
        "https://user:pass@example.com/hooks",
        "ftp://example.com/hooks",
        "http://example.com/hooks",
    ],
)
async def test_endpoints_on_non_public_addresses_are_refused_outside_development(
    nats_url: str, database_url: str, nats_client: Client, url: str
) -> None:
    service = make_notifier(nats_url, database_url, allow_private_webhook_urls=False)
    await service.start()
    try:
        reply = await request(
            nats_client,
            "notifier.endpoints.create",
            CreateEndpointRequest(tenant_id=TENANT, url=url),
            EndpointCreated,
        )
        assert isinstance(reply, ErrorReply) and reply.error.code == ErrorCode.INVALID_REQUEST, reply
        async with service.sessions() as session:
            assert await session.scalar(text("SELECT count(*) FROM notifier.endpoints")) == 0
    finally:
        await service.stop()


async def test_a_public_name_that_resolves_inside_is_not_connected_to(
    nats_url: str, database_url: str, nats_client: Client
) -> None:
    # Registered (a name is judged when connecting), then refused at connect time: this machine's own
    # name, which resolves to a loopback or private address.
    host = socket.gethostname()
    if all(is_public_address(info[4][0]) for info in socket.getaddrinfo(host, 443)):
        pytest.skip("this machine's name resolves to a public address")
    service = make_notifier(nats_url, database_url, allow_private_webhook_urls=False, webhook_max_attempts=1)
    await service.start()
    try:
        async with receiver() as endpoint:
            port = endpoint.url.rsplit(":", 1)[1].split("/")[0]
            await create(nats_client, f"https://{host}:{port}/hooks")
            await publish(nats_client, granted(f"c-{uuid.uuid4().hex[:6]}"))

            async def failed() -> DeliveryList | None:
                listed = await deliveries(nats_client, status="failed")
                return listed if listed.deliveries else None

            (delivery,) = (await wait_for_async(failed, timeout=20)).deliveries
            assert "non-public" in (delivery.last_error or "")
            assert endpoint.received == []
    finally:
        await service.stop()
