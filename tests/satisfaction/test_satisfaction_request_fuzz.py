"""Issue 19, item 6: `satisfaction.check.<tenant>` fed malformed, oversized, wrongly-typed and boundary
bodies (tests/fixtures/nats_fuzz.py): each gets an error reply, a valid check still works afterwards and
nothing in satisfaction's schema changes. `GRANTLINE_FUZZ_EXAMPLES=2000` is the nightly profile."""

from __future__ import annotations

import pytest
from fixtures.nats_fuzz import hostile_requests, schema_fingerprint
from nats.aio.client import Client
from satisfaction_harness import TENANT, check, make_service, running

from grantline.contract.satisfaction import SUBJECT_CHECK, SatisfactionCheckRequest, SatisfactionReport

pytestmark = pytest.mark.fuzz


@pytest.mark.timeout(300)
async def test_hostile_checks_get_error_replies_and_change_nothing(
    nats_url: str, database_url: str, nats_client: Client
):
    async with running(make_service(nats_url, database_url)):
        before = schema_fingerprint(database_url, "satisfaction")
        assert before, "the schema has tables to compare"

        failures = await hostile_requests(
            nats_client, [(f"{SUBJECT_CHECK}.{TENANT}", SatisfactionCheckRequest)]
        )

        assert not failures, "\n".join(failures[:20])
        assert schema_fingerprint(database_url, "satisfaction") == before
        assert isinstance(await check(nats_client, "alice", ["github"]), SatisfactionReport)
