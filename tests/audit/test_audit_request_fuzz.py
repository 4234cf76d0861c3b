"""Issue 19, item 6: `audit.query` fed malformed, oversized, wrongly-typed and boundary bodies
(tests/fixtures/nats_fuzz.py): each gets an error reply, a valid query still works afterwards and the
ledger is unchanged. `GRANTLINE_FUZZ_EXAMPLES=2000` is the nightly profile."""

from __future__ import annotations

import pytest
from audit_harness import running_audit
from fixtures.nats_fuzz import hostile_requests, schema_fingerprint
from nats.aio.client import Client

from grantline.contract.audit import AuditQueryReply, AuditQueryRequest
from grantline.runtime.nats.request_reply import request

pytestmark = pytest.mark.fuzz


@pytest.mark.timeout(300)
async def test_hostile_audit_queries_get_error_replies_and_change_nothing(
    nats_url: str, database_url: str, nats_client: Client
):
    async with running_audit(nats_url, database_url):
        before = schema_fingerprint(database_url, "audit")
        assert before, "the schema has tables to compare"

        failures = await hostile_requests(nats_client, [("audit.query", AuditQueryRequest)])

        assert not failures, "\n".join(failures[:20])
        assert schema_fingerprint(database_url, "audit") == before
        reply = await request(
            nats_client, "audit.query", AuditQueryRequest(tenant_id="acme"), AuditQueryReply
        )
        assert isinstance(reply, AuditQueryReply), reply
