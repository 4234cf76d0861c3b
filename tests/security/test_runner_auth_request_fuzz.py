"""Issue 19, item 6: `runner_auth.runners.*` fed malformed, oversized, wrongly-typed and boundary bodies
(tests/fixtures/nats_fuzz.py) as the gateway, over the secured server with the real permission file: each
gets an error reply, nothing in runner-auth's schema changes, and listing runners still works afterwards.
`GRANTLINE_FUZZ_EXAMPLES=2000` is the nightly profile."""

from __future__ import annotations

import pytest
from fixtures.nats_fuzz import hostile_requests, schema_fingerprint

from grantline.contract import runner_identities as runners
from grantline.runtime.nats.request_reply import request

pytestmark = pytest.mark.fuzz


@pytest.mark.timeout(300)
async def test_hostile_runner_requests_get_error_replies_and_change_nothing(
    runner_auth, connect, database_url: str
):
    issued = await runner_auth.issue(["tenant-a"])
    gateway = await connect("auth-gateway")
    before = schema_fingerprint(database_url, "runner_auth")
    assert before, "the schema has tables to compare"

    failures = await hostile_requests(
        gateway.nc,
        [
            (runners.SUBJECT_RUNNERS_CREATE, runners.CreateRunnerRequest),
            (runners.SUBJECT_RUNNERS_LIST, runners.ListRunnersRequest),
            (runners.SUBJECT_RUNNERS_REVOKE, runners.RevokeRunnerRequest),
        ],
    )

    assert not failures, "\n".join(failures[:20])
    assert schema_fingerprint(database_url, "runner_auth") == before
    listed = await request(
        gateway.nc,
        runners.SUBJECT_RUNNERS_LIST,
        runners.ListRunnersRequest(tenant_id="tenant-a"),
        runners.RunnerList,
    )
    assert isinstance(listed, runners.RunnerList) and [r.runner_id for r in listed.runners] == [
        issued.runner_id
    ]
