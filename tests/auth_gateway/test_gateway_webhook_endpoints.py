"""`/v1/webhook-endpoints` through the gateway, answered by the real notifier; deliveries reach a real
HTTP receiver when the vault grants a connection."""

from __future__ import annotations

import sys
from pathlib import Path

from fixtures.waiting import wait_for_async
from gateway_flow import connect, setup_app
from gateway_support import KEY_A, KEY_B, bearer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "notifier"))
from notifier_harness import make_notifier, receiver
from standardwebhooks.webhooks import Webhook


async def test_tenant_registers_an_endpoint_sees_deliveries_and_removes_it(
    stack, nats_url, database_url
) -> None:
    notifier = make_notifier(nats_url, database_url)
    await notifier.start()
    try:
        async with receiver() as endpoint:
            created = await stack.client.post(
                "/v1/webhook-endpoints",
                headers=bearer(KEY_A),
                json={"url": endpoint.url, "description": "ops", "event_types": ["connection.granted"]},
            )
            assert created.status_code == 201, created.text
            view = created.json()
            secret, endpoint_id = view["secret"], view["endpoint_id"]
            assert secret.startswith("whsec_")
            listed = await stack.client.get("/v1/webhook-endpoints", headers=bearer(KEY_A))
            assert [e["endpoint_id"] for e in listed.json()["endpoints"]] == [endpoint_id]
            assert secret not in listed.text
            assert (await stack.client.get("/v1/webhook-endpoints", headers=bearer(KEY_B))).json()[
                "endpoints"
            ] == []

            await setup_app(stack)
            started = await connect(stack, "ada")  # the vault grants: connections.granted

            async def delivered():
                response = await stack.client.get(
                    "/v1/webhook-endpoints/deliveries?status=succeeded", headers=bearer(KEY_A)
                )
                assert response.status_code == 200, response.text
                return response.json()["deliveries"] or None

            (delivery,) = await wait_for_async(delivered, timeout=30)
            assert delivery["event_type"] == "connection.granted"
            assert delivery["connection_id"] == started["connection_id"]
            (got,) = endpoint.received
            body = Webhook(secret).verify(got.body, got.headers)
            assert body["data"]["connection_id"] == started["connection_id"]
            assert "sbx_" not in got.body.decode()  # no token ever
            # The admin UI shows the endpoint and the delivery with its status.
            signed_in = await stack.client.post("/admin/sign-in", data={"api_key": KEY_A})
            assert signed_in.status_code in (302, 303), signed_in.text
            page = await stack.client.get("/admin/webhooks")
            assert page.status_code == 200, page.text
            assert f'data-delivery="{delivery["delivery_id"]}"' in page.text
            assert "badge-succeeded" in page.text
            assert f'data-endpoint="{endpoint_id}"' in page.text and secret not in page.text
            assert (await stack.client.get("/admin/webhooks?status=bogus")).status_code == 422
            other = await stack.client.get("/v1/webhook-endpoints/deliveries", headers=bearer(KEY_B))
            assert other.json()["deliveries"] == []

            # Bad input is a problem and changes nothing; another tenant cannot remove it.
            bad = await stack.client.post(
                "/v1/webhook-endpoints",
                headers=bearer(KEY_A),
                json={"url": endpoint.url, "event_types": ["x"]},
            )
            assert bad.status_code == 422
            foreign = await stack.client.delete(f"/v1/webhook-endpoints/{endpoint_id}", headers=bearer(KEY_B))
            assert foreign.status_code == 404, foreign.text
            removed = await stack.client.delete(f"/v1/webhook-endpoints/{endpoint_id}", headers=bearer(KEY_A))
            assert removed.status_code == 204
            assert (await stack.client.get("/v1/webhook-endpoints", headers=bearer(KEY_A))).json()[
                "endpoints"
            ] == []
    finally:
        await notifier.stop()


async def test_without_the_notifier_the_api_says_so(stack) -> None:
    response = await stack.client.get("/v1/webhook-endpoints", headers=bearer(KEY_A))
    assert response.status_code == 503 and response.json()["code"] == "service_unavailable"
