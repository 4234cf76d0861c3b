"""Issue 19, item 6: every request subject the vault serves, fed malformed, oversized, wrongly-typed and
boundary bodies (tests/fixtures/nats_fuzz.py). Each gets an error reply, the vault keeps serving (a valid
resolve still returns the token afterwards), and nothing in the vault's schema changes.

Bounded by default; `GRANTLINE_FUZZ_EXAMPLES=2000 ./bin/test tests/vault/test_vault_request_fuzz.py`
is the nightly profile."""

from __future__ import annotations

import pytest
from fixtures.nats_fuzz import hostile_requests, publish_hostile_events, schema_fingerprint
from fixtures.waiting import wait_for_async
from nats.js import JetStreamContext
from vault_harness import TENANT, VaultHarness

from grantline.contract.asyncapi import REQUEST_REPLY, TENANT_SCOPED_REQUESTS
from grantline.contract.envelope import tenant_scoped
from grantline.contract.runs import RunFinished
from grantline.runtime.nats.consumers import VAULT_RUNS_FINISHED

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
    before = await _connected_at_rest(vault, database_url)

    failures = await hostile_requests(vault.runtime.nats, VAULT_REQUESTS)

    assert not failures, "\n".join(failures[:20])
    assert schema_fingerprint(database_url, "vault") == before
    assert await vault.token("sandbox")


async def _connected_at_rest(vault: VaultHarness, database_url: str) -> dict[str, str]:
    """Connect alice's sandbox account, wait for the outbox relay (so the schema is at rest), and return
    the schema's fingerprint."""
    await vault.put_app("sandbox")
    await vault.connect("sandbox")
    await wait_for_async(lambda: _outbox_empty(vault), message="the vault outbox drains")
    fingerprint = schema_fingerprint(database_url, "vault")
    assert fingerprint, "the schema has tables to compare"
    return fingerprint


async def _outbox_empty(vault: VaultHarness) -> bool:
    return not await vault.sql("SELECT 1 FROM vault.outbox LIMIT 1")


@pytest.mark.timeout(300)
async def test_hostile_finished_run_events_are_terminated_and_change_nothing(
    vault: VaultHarness, database_url: str
):
    before = await _connected_at_rest(vault, database_url)
    js = vault.runtime.nats.jetstream()
    assert await publish_hostile_events(js, f"{RunFinished.SUBJECT}.{TENANT}", RunFinished, examples=20) > 20

    await wait_for_async(
        lambda: _drained(js), timeout=60, message="the vault's runs.finished consumer drains"
    )
    assert schema_fingerprint(database_url, "vault") == before
    assert await vault.token("sandbox")


async def _drained(js: JetStreamContext) -> bool:
    info = await js.consumer_info(VAULT_RUNS_FINISHED.stream.name, VAULT_RUNS_FINISHED.durable)
    return not info.num_pending and not info.num_ack_pending
