"""`vault.resolve` answers only inside a valid run grant (the zero-trust bus issue, Done-when cases).

A run R of user alice whose app needs sandbox_github: its grant resolves alice's sandbox_github token,
and nothing else: not her sandbox_slack token, not bob's, not after `runs.finished` for R, not with a
grant whose signature, tenant, user or expiry was altered, not on another tenant's subject.
"""

from __future__ import annotations

from fixtures.run_grants import altered_grant, grant_claims, mint_grant
from fixtures.waiting import wait_for_async
from vault_harness import TENANT, VaultHarness

from grantline.contract import ErrorCode, ErrorReply, RunFinished, encode_message
from grantline.contract.audit import AuditRecord
from grantline.contract.vault import ResolveReply
from grantline.runtime.run_grants import new_signing_key

GITHUB, SLACK = "sandbox_github", "sandbox_slack"


def refused(reply: ResolveReply | ErrorReply, code: ErrorCode = ErrorCode.FORBIDDEN) -> str:
    assert isinstance(reply, ErrorReply), "a token was handed out"
    assert reply.error.code == code, reply.error
    return reply.error.message


async def connected(vault: VaultHarness) -> None:
    for provider in (GITHUB, SLACK):
        await vault.put_app(provider)
        await vault.connect(provider, user="alice")
    await vault.connect(GITHUB, user="bob")


async def test_a_grant_resolves_only_what_its_run_may_use(vault: VaultHarness) -> None:
    await connected(vault)
    grant = mint_grant(TENANT, "alice", {GITHUB: ["read"]}, run_id="R")
    token = await vault.resolve(GITHUB, grant=grant, scopes=["read"])
    assert isinstance(token, ResolveReply)

    assert "does not cover" in refused(await vault.resolve(SLACK, grant=grant))
    assert "does not allow scope" in refused(await vault.resolve(GITHUB, grant=grant, scopes=["write"]))
    # Another user: only by altering the grant, which breaks its signature.
    assert "signature" in refused(await vault.resolve(GITHUB, grant=altered_grant(grant, sub="bob")))
    assert "signature" in refused(
        await vault.resolve(GITHUB, grant=altered_grant(grant, prv={GITHUB: [], SLACK: []}))
    )
    assert "signature" in refused(
        await vault.resolve(GITHUB, grant=altered_grant(grant, exp=int(grant_claims(grant)["exp"]) + 86400))
    )
    # Another tenant: a grant altered to name it fails; the genuine grant on its subject fails too.
    assert "signature" in refused(
        await vault.resolve(GITHUB, grant=altered_grant(grant, tid="tenant-b"), tenant="tenant-b")
    )
    assert "another tenant" in refused(await vault.resolve(GITHUB, grant=grant, tenant="tenant-b"))
    # Signed by someone else's key, or expired.
    forged = mint_grant(TENANT, "bob", [GITHUB], signing_keys={"keys": [new_signing_key("test-1")]})
    assert "signature" in refused(await vault.resolve(GITHUB, grant=forged))
    expired = mint_grant(TENANT, "alice", [GITHUB], ttl_seconds=-60)
    assert "expired" in refused(await vault.resolve(GITHUB, grant=expired))
    # A grant that would live longer than the vault accepts (a day by default).
    assert "lifetime" in refused(
        await vault.resolve(GITHUB, grant=mint_grant(TENANT, "alice", [GITHUB], ttl_seconds=3 * 86400))
    )
    # With no grant at all the request is malformed.
    raw = await vault.runtime.nats.request(
        f"vault.resolve.{TENANT}", b'{"provider": "sandbox_github"}', timeout=5
    )
    assert ErrorReply.model_validate_json(raw.data).error.code == ErrorCode.INVALID_REQUEST

    # The refusals inside a verified grant are audited as denied under the grant's run and user.
    async def denied() -> list[AuditRecord]:
        return [r for r in await vault.resolve_records() if r.outcome == "denied"]

    await wait_for_async(lambda: _at_least(denied, 2), timeout=10)
    records = await denied()
    assert {(r.run_id, r.user_id, r.detail.get("error")) for r in records} == {("R", "alice", "forbidden")}


async def _at_least(read, count: int) -> bool:  # type: ignore[no-untyped-def]
    return len(await read()) >= count


async def test_a_finished_run_resolves_nothing_more(vault: VaultHarness) -> None:
    await connected(vault)
    grant = mint_grant(TENANT, "alice", [GITHUB], run_id="R")
    other = mint_grant(TENANT, "alice", [GITHUB], run_id="R2")
    assert isinstance(await vault.resolve(GITHUB, grant=grant), ResolveReply)
    finished = RunFinished(tenant_id=TENANT, run_id="R")
    await vault.runtime.nats.jetstream().publish(
        finished.subject(), encode_message(finished), headers={"Nats-Msg-Id": str(finished.id)}
    )

    async def spent() -> bool:
        return isinstance(await vault.resolve(GITHUB, grant=grant), ErrorReply)

    await wait_for_async(spent, timeout=10)
    assert "finished" in refused(await vault.resolve(GITHUB, grant=grant))
    # Another run of the same user is not affected.
    assert isinstance(await vault.resolve(GITHUB, grant=other), ResolveReply)


async def test_a_runs_finished_for_another_tenant_in_the_body_is_not_taken(vault: VaultHarness) -> None:
    # A runner of tenant-b may publish on runs.finished.tenant-b only; a body naming tenant-a's run
    # there is rejected, so it cannot end (or learn about) another tenant's runs.
    await connected(vault)
    grant = mint_grant(TENANT, "alice", [GITHUB], run_id="R")
    forged = RunFinished(tenant_id=TENANT, run_id="R")
    js = vault.runtime.nats.jetstream()
    await js.publish("runs.finished.tenant-b", encode_message(forged), headers={"Nats-Msg-Id": "forged"})
    marker = RunFinished(tenant_id="tenant-b", run_id="marker")
    await js.publish(marker.subject(), encode_message(marker), headers={"Nats-Msg-Id": "marker"})

    async def marker_seen() -> bool:
        rows = await vault.sql("SELECT run_id FROM vault.finished_runs WHERE tenant_id = 'tenant-b'")
        return bool(rows)

    await wait_for_async(marker_seen, timeout=10)
    assert isinstance(await vault.resolve(GITHUB, grant=grant), ResolveReply)
    assert await vault.sql("SELECT run_id FROM vault.finished_runs WHERE tenant_id = :t", t=TENANT) == []
