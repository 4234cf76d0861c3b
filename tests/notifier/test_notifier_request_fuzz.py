"""The notifier's request subjects fed malformed, oversized, wrongly-typed and boundary bodies
(tests/fixtures/nats_fuzz.py): each gets an error reply and its schema is unchanged."""

from __future__ import annotations

import pytest
from fixtures.nats_fuzz import hostile_requests, schema_fingerprint
from nats.aio.client import Client
from notifier_harness import make_notifier

from grantline.contract import notifier

pytestmark = pytest.mark.fuzz


@pytest.mark.timeout(300)
async def test_hostile_notifier_requests_get_error_replies_and_change_nothing(
    nats_url: str, database_url: str, nats_client: Client
) -> None:
    service = make_notifier(nats_url, database_url, allow_private_webhook_urls=False)
    await service.start()
    try:
        before = schema_fingerprint(database_url, "notifier")
        subjects = [
            (notifier.SUBJECT_ENDPOINT_CREATE, notifier.CreateEndpointRequest),
            (notifier.SUBJECT_ENDPOINT_LIST, notifier.ListEndpointsRequest),
            (notifier.SUBJECT_ENDPOINT_DELETE, notifier.DeleteEndpointRequest),
            (notifier.SUBJECT_DELIVERY_LIST, notifier.ListDeliveriesRequest),
        ]
        failures = await hostile_requests(nats_client, subjects)
        assert not failures, "\n".join(failures[:20])
        assert schema_fingerprint(database_url, "notifier") == before
    finally:
        await service.stop()
