"""What users expect when tokens die and runs end, and the audit record of every call.

- a token the provider stopped accepting is refreshed through the vault and the call retried once;
- a connection the provider no longer honours at all becomes `reauth_required` (vault events as for
  a refused refresh);
- after `runs.finished` nothing more goes through; a revocation closes a stream in flight;
- every call is an audit record, and the canary token is found in no log, event, record or response.
"""

from __future__ import annotations

import json
import logging

import pytest
from fixtures.waiting import wait_for_async
from proxy_harness import TENANT, ProxyHarness, proxy_settings, running_proxy
from vault_harness import VaultHarness

from grantline.contract.connections import ReauthRequired
from grantline.contract.registry import decode_event
from grantline.contract.runs import RunConnectionRevoked, RunFinished

CANARY = "CANARYp3x"


async def _connected(vault: VaultHarness, provider: str = "sandbox", user: str = "alice") -> str:
    await vault.put_app(provider)
    scopes = ["read", "write"] if provider == "sandbox" else None
    return (await vault.connect(provider, user=user, scopes=scopes)).connection_id


async def test_a_token_dead_upstream_is_refreshed_and_the_call_retried(
    vault: VaultHarness, proxy: ProxyHarness
) -> None:
    await _connected(vault)
    grant = proxy.grant("alice")
    assert (await proxy.call("GET", "sandbox/items", grant)).status_code == 200
    # The provider ends the token early (the stored expiry still says it is good).
    vault.sandbox.state.revoke_token(await vault.token("sandbox", user="alice"))
    before = vault.sandbox.refresh_grants("standard")
    retried = await proxy.call("POST", "sandbox/items", grant, json={"name": "after refresh"})
    assert retried.status_code == 201, retried.text
    assert vault.sandbox.refresh_grants("standard") == before + 1
    records = await proxy.call_records()
    assert records[-1].detail["retried_after_refresh"] is True
    assert records[-1].detail["status"] == 201


async def test_a_dead_connection_becomes_reauth_required(vault: VaultHarness, proxy: ProxyHarness) -> None:
    connection_id = await _connected(vault, "sandbox_github")
    grant = proxy.grant("alice", providers=["sandbox_github"])
    assert (await proxy.call("GET", "sandbox_github/items", grant)).status_code == 200
    vault.sandbox.state.revoke_subject("alice", "github")  # the user removed the app at the provider
    dead = await proxy.call("GET", "sandbox_github/items", grant)
    assert dead.status_code == 409 and dead.headers["grantline-error"] == "reauth_required"
    [(status,)] = await vault.sql("SELECT status FROM vault.connections WHERE id = :id", id=connection_id)
    assert status == "reauth_required"

    async def reauth_event() -> bool:
        js = vault.runtime.nats.jetstream()
        info = await js.stream_info("CONNECTIONS")
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            event = decode_event((await js.get_msg("CONNECTIONS", seq)).data or b"")
            if isinstance(event, ReauthRequired) and event.connection_id == connection_id:
                return True
        return False

    await wait_for_async(reauth_event, timeout=10)
    again = await proxy.call("GET", "sandbox_github/items", grant)
    assert again.status_code == 409 and again.headers["grantline-error"] == "reauth_required"


async def test_nothing_goes_through_after_runs_finished(vault: VaultHarness, proxy: ProxyHarness) -> None:
    await _connected(vault)
    grant = proxy.grant("alice", run_id="run-ending")
    assert (await proxy.call("GET", "sandbox/items", grant)).status_code == 200
    finished = RunFinished(tenant_id=TENANT, run_id="run-ending")
    await proxy.runtime.nats.publish(finished.subject(), finished.model_dump_json().encode())

    async def refused() -> bool:
        response = await proxy.call("GET", "sandbox/items", grant)
        return response.status_code == 403 and response.headers["grantline-error"] == "run_finished"

    await wait_for_async(refused, timeout=10)


async def test_a_revocation_closes_a_stream_in_flight(vault: VaultHarness, proxy: ProxyHarness) -> None:
    connection_id = await _connected(vault)
    grant = proxy.grant("alice", run_id="run-streaming")
    lines: list[str] = []
    async with proxy.http.stream(
        "GET",
        f"{proxy.url}/v1/proxy/sandbox/events?count=0&interval_ms=20",
        headers={"Authorization": f"Bearer {grant}"},
    ) as response:
        assert response.status_code == 200
        async for line in response.aiter_lines():
            lines.append(line)
            if line == 'data: {"n": 2}':
                revoked = RunConnectionRevoked(
                    tenant_id=TENANT,
                    run_id="run-streaming",
                    connection_id=connection_id,
                    provider="sandbox",
                    reason="user",
                )
                await proxy.runtime.nats.publish(revoked.subject(), revoked.model_dump_json().encode())
    # The stream ended (count=0 never ends by itself) with the proxy's last word.
    assert "event: grantline.closed" in lines
    assert json.loads(lines[lines.index("event: grantline.closed") + 1][6:]) == {
        "reason": "connection_revoked"
    }
    refused = await proxy.call("GET", "sandbox/items", grant)
    assert refused.status_code == 403 and refused.headers["grantline-error"] == "revoked"
    [record] = [
        r for r in await proxy.call_records() if r.run_id == "run-streaming" and r.detail["status"] == 200
    ]
    assert record.detail["closed"] == "connection_revoked" and record.outcome == "failure"


async def test_every_call_is_audited_without_query_values(vault: VaultHarness, proxy: ProxyHarness) -> None:
    connection_id = await _connected(vault)
    grant = proxy.grant("alice", run_id="run-audited", app_id="app-7")
    headers = {"Grantline-Tool": "list-items"}
    await proxy.call("GET", "sandbox/items?q=secret-search&page=2", grant, headers=headers)
    await proxy.call("GET", "sandbox_github/items", grant, headers=headers)  # refused: not in the grant
    records = [r for r in await proxy.call_records() if r.run_id == "run-audited"]
    assert [(r.provider, r.outcome, r.detail["status"]) for r in records] == [
        ("sandbox", "success", 200),
        ("sandbox_github", "denied", 403),
    ]
    ok = records[0]
    assert (ok.tenant_id, ok.user_id, ok.app_id, ok.tool, ok.connection_id) == (
        TENANT,
        "alice",
        "app-7",
        "list-items",
        connection_id,
    )
    assert ok.actor == "user:alice" and ok.action == "proxy.call"
    assert ok.detail["method"] == "GET"
    assert ok.detail["path"] == "/items?q=&page="
    assert ok.detail["bytes_out"] > 0 and ok.detail["duration_ms"] > 0
    assert "secret-search" not in ok.model_dump_json()
    assert records[1].detail["error"] == "forbidden"


async def test_the_canary_never_leaks(
    nats_url: str, vault: VaultHarness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    vault.sandbox.state.canary = CANARY
    await _connected(vault)
    token = await vault.token("sandbox", user="alice")
    assert CANARY in token
    settings = proxy_settings(nats_url, vault.sandbox.url, audit_response_body_tenants=[TENANT])
    async with running_proxy(settings) as proxy:
        grant = proxy.grant("alice", run_id="run-canary")
        responses = [
            await proxy.call("GET", "sandbox/echo", grant),
            await proxy.call(
                "POST", "sandbox/items", grant, json={"name": "x", "access_token": "ya29.abcdefghijklmnop"}
            ),
            await proxy.call("GET", "sandbox/rate_limited", grant),
            await proxy.call("GET", "sandbox/items", grant, headers={"Grantline-Upstream-Host": "evil.test"}),
        ]
        vault.sandbox.state.revoke_token(token)
        responses.append(await proxy.call("GET", "sandbox/items", grant))  # 401, refresh, retry
        assert [r.status_code for r in responses] == [200, 201, 429, 403, 200]
        records = [r for r in await proxy.call_records() if r.run_id == "run-canary"]
        assert len(records) == 5
        assert "response_excerpt" in records[0].detail
        # The opt-in excerpt keeps the record readable but redacts secret-named fields.
        assert "ya29.abcdefghijklmnop" not in records[1].model_dump_json()
        js = proxy.runtime.nats.jetstream()
        payloads = []
        for stream in ("CONNECTIONS", "AUDIT", "RUNS"):
            info = await js.stream_info(stream)
            if not info.state.messages:
                continue
            for seq in range(info.state.first_seq, info.state.last_seq + 1):
                message = await js.get_msg(stream, seq)
                payloads.append(bytes(message.data or b"") + repr(message.headers).encode())
    assert not [r for r in responses if CANARY in r.text or CANARY in repr(r.headers)]
    assert payloads and not [p for p in payloads if CANARY.encode() in p]
    assert not [r for r in caplog.records if CANARY in r.getMessage() or CANARY in repr(r.__dict__)]
