"""Issue 19, item 6: every request subject the vault serves, fed malformed, oversized, wrongly-typed and
boundary bodies (tests/fixtures/nats_fuzz.py). Each gets an error reply, the vault keeps serving (a valid
resolve still returns the token afterwards), and nothing in the vault's schema changes.

Bounded by default; `GRANTLINE_FUZZ_EXAMPLES=2000 ./bin/test tests/vault/test_vault_request_fuzz.py`
is the nightly profile."""

from __future__ import annotations

import pytest
from fixtures.nats_fuzz import hostile_requests, schema_fingerprint
from fixtures.waiting import wait_for_async
from vault_harness import TENANT, VaultHarness

from grantline.common.contract.asyncapi import REQUEST_REPLY, TENANT_SCOPED_REQUESTS
from grantline.common.contract.envelope import tenant_scoped

pytestmark = pytest.mark.fuzz

VAULT_REQUESTS = [
    (tenant_scoped(subject, TENANT) if subject in TENANT_SCOPED_REQUESTS else subject, request)
    for subject, request, _, _ in REQUEST_REPLY
    if subject.startswith("vault.")
]


def test_every_vault_request_subject_is_fuzzed():
    assert len(VAULT_REQUESTS) >= 15, [subject for subject, _ in VAULT_REQUESTS]


@pytest.mark.timeout(600)
async def test_hostile_vault_requests_get_error_replies_and_change_nothing(
    vault: VaultHarness, database_url: str
):
    await vault.put_app("sandbox")
    await vault.connect("sandbox")
    # The connect's events leave through the outbox: wait for the relay, so the fingerprint is at rest.
    await wait_for_async(lambda: _outbox_empty(vault), message="the vault outbox drains")
    before = schema_fingerprint(database_url, "vault")
    assert before, "the schema has tables to compare"

    failures = await hostile_requests(vault.runtime.nats, VAULT_REQUESTS)

    assert not failures, "\n".join(failures[:20])
    assert schema_fingerprint(database_url, "vault") == before
    assert await vault.token("sandbox")


async def _outbox_empty(vault: VaultHarness) -> bool:
    return not await vault.sql("SELECT 1 FROM vault.outbox LIMIT 1")
