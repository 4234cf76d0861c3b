"""The whole life of a connection, as a platform lives it, against `grantline dev` run as a user runs it.

Every service is its own process, NATS runs with the permission file (the runner connects as the
`runner` user), Postgres and NATS are embedded, the sandbox plays the provider. The walk: provider
app set up over HTTP -> a run is held for the missing connection -> the user connects through the
browser flow -> the run is admitted, once -> the runner resolves a token -> the token expires and the
refresher renews it in the background -> the user revokes -> the in-flight run is told and its next
resolve fails -> the audit log shows every step and `grantline audit verify` passes -> the sandbox's
canary (in every token and code it issued), the client secret and the API key appear in no log file,
stream message, HTTP response or database column -> SIGTERM stops everything cleanly.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import nats
import pytest
from e2e_dev_stack import DevStackProcess, service_command_lines
from e2e_leak_scan import read_all_streams, scan_database, scan_log_files, scan_stream_messages, service_logs
from fixtures.waiting import wait_for_async

from grantline.contract import RunConnectionRevoked, RunHeld
from grantline.contract.errors import ErrorCode
from grantline.runner import ResolveError, RunnerClient
from grantline.runner.proxy import proxy_client, raise_for_proxy_error

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

PROVIDER = "sandbox"
USER = "ada@example.com"
APP_ID = "e2e-mail-assistant"
TOKEN_LIFETIME_SECONDS = 6
EVENT_TIMEOUT = 30.0
AUDITED_STEPS = {
    "connection.initiated",
    "connection.granted",
    "token.resolved",
    "token.refreshed",
    "connection.revoked",
}


class Walk:
    """What the walk has seen: every HTTP response from Grantline, the secrets to look for."""

    def __init__(self, stack: DevStackProcess) -> None:
        self.info = stack.info
        self.canary = "CANARYe2e" + secrets.token_hex(4)
        self.client_secret = "sbx_secret_e2e_" + secrets.token_urlsafe(24)
        self.client_id = "e2e-client-" + secrets.token_hex(4)
        self.responses: list[httpx.Response] = []
        # Token values seen by the runner or recorded by the provider (they all carry the canary too).
        self.issued: set[str] = set()

    @property
    def secrets(self) -> list[str]:
        return [self.canary, self.client_secret, str(self.info["api_key"]), *sorted(self.issued)]

    async def _keep(self, response: httpx.Response) -> None:
        await response.aread()
        self.responses.append(response)

    def api(self) -> httpx.AsyncClient:
        """The platform's client of the public API (every response kept for the leak scan)."""
        return httpx.AsyncClient(
            base_url=str(self.info["api_url"]),
            headers={"Authorization": f"Bearer {self.info['api_key']}"},
            event_hooks={"response": [self._keep]},
            timeout=30,
        )

    def anonymous(self) -> httpx.AsyncClient:
        """A client without the API key (a browser on Grantline's pages, a metrics scraper); kept too."""
        return httpx.AsyncClient(event_hooks={"response": [self._keep]}, timeout=30)

    def sandbox(self) -> httpx.AsyncClient:
        """The test's hand on the provider (its control API), not a Grantline response."""
        return httpx.AsyncClient(base_url=str(self.info["sandbox_url"]), timeout=30)


def _query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


async def _refresher_refreshes(client: httpx.AsyncClient, metrics_url: str) -> float:
    """The refresher's count of successful background refreshes of sandbox tokens (its /metrics)."""
    text = (await client.get(metrics_url)).text
    total = 0.0
    for line in text.splitlines():
        counted = line.startswith("grantline_refresh_succeeded_total{") and 'outcome="refreshed"' in line
        if counted and f'provider="{PROVIDER}"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


async def _refresh_grants(sandbox: httpx.AsyncClient) -> int:
    """How many refresh grants the provider has received (its request recording)."""
    response = await sandbox.get("/_sandbox/requests", params={"grant_type": "refresh_token"})
    return len(response.json())


async def _refresh_tokens_sent(sandbox: httpx.AsyncClient) -> set[str]:
    """The refresh tokens the vault sent to the provider (the provider's recording of its requests)."""
    response = await sandbox.get("/_sandbox/requests", params={"grant_type": "refresh_token"})
    tokens = {str((r["body"] or {}).get("refresh_token")) for r in response.json()}
    assert tokens and all(t.startswith("sbx_rt_") for t in tokens), "no refresh token was recorded"
    return tokens


async def _connection(api: httpx.AsyncClient, connection_id: str) -> dict[str, Any]:
    response = await api.get("/v1/connections", params={"user_id": USER})
    assert response.status_code == 200, response.text
    [found] = [c for c in response.json()["connections"] if c["connection_id"] == connection_id]
    return found


def test_e2e_every_service_runs_without_docstrings(dev_stack: DevStackProcess) -> None:
    # `grantline run` re-executes itself under -OO (cli/service_entry.py): same pid, so `grantline dev`
    # still supervises it.
    from grantline.cli.services import ROLES

    running = service_command_lines(dev_stack)
    assert set(running) == {role.name for role in ROLES.values()}
    for name, command in running.items():
        assert "-OO" in command, (name, command)


async def test_e2e_dev_sandbox_offers_an_mcp_server(dev_stack: DevStackProcess) -> None:
    """`grantline dev` names a sandbox MCP server; added by URL alone, it is discovered and registered
    (the sandbox's authorization server fetches the dev gateway's client metadata document)."""
    info = dev_stack.info
    async with httpx.AsyncClient(
        base_url=str(info["api_url"]), headers={"Authorization": f"Bearer {info['api_key']}"}, timeout=30
    ) as api:
        added = await api.post("/v1/mcp-servers", json={"url": info["sandbox_mcp_server_url"], "name": "Dev"})
        assert added.status_code == 201, added.text
        assert added.json()["registration"] == "client_metadata_document"
        started = await api.post(
            "/v1/connections/initiate",
            json={
                "user_id": "mcp-user",
                "provider": added.json()["provider"],
                "return_to": f"{info['api_url']}/admin/connections",
            },
        )
        assert started.status_code == 200, started.text
    async with httpx.AsyncClient(timeout=30) as browser:
        redirect = await browser.get(started.json()["authorize_url"])
    # The sandbox fetched and accepted the metadata document: it redirects back with a code.
    assert redirect.status_code == 302 and "code=" in redirect.headers["location"], redirect.text


async def test_e2e_runner_credentials_are_restricted(dev_stack: DevStackProcess) -> None:
    """The stack's NATS runs with the permission file: dev.json's runner credentials cannot serve
    `vault.resolve` or read `connections.>`, and an anonymous client is not let in."""
    info = dev_stack.info
    # dev.json holds a runner identity of the dev tenant, issued by runner-auth (no static runner).
    assert str(info["nats_user"]).startswith("rnr_")
    assert info["nats_inbox_prefix"] == f"_INBOX.{info['nats_user']}"
    errors: list[str] = []

    async def on_error(error: Exception) -> None:
        errors.append(str(error).lower())

    with pytest.raises(nats.errors.Error):
        await nats.connect(
            str(info["nats_url"]),
            allow_reconnect=False,
            connect_timeout=2,
            **dev_stack.nats_connect_options(),
        )
    nc = await nats.connect(
        str(info["nats_url"]),
        user=str(info["nats_user"]),
        password=str(info["nats_password"]),
        inbox_prefix=str(info["nats_inbox_prefix"]),
        error_cb=on_error,
        allow_reconnect=False,
        connect_timeout=5,
        **dev_stack.nats_connect_options(),
    )
    try:
        for subject in ("vault.resolve.*", "connections.>"):
            await nc.subscribe(subject)
            # The server reports the violation before it answers the PING of the flush.
            await nc.flush()
            await wait_for_async(
                lambda subject=subject: any("permissions violation" in e and subject in e for e in errors),
                timeout=5,
                message=f"no permissions violation for {subject}; got {errors}",
            )
    finally:
        await nc.close()


async def test_e2e_connection_lifecycle(dev_stack: DevStackProcess, runner: RunnerClient) -> None:
    walk = Walk(dev_stack)
    info = dev_stack.info
    tenant_id = str(info["tenant_id"])
    run_id = f"run-{uuid.uuid4()}"
    return_to = "http://127.0.0.1:3000/e2e/done"  # the dev tenant allows loopback return_to URLs
    async with (
        walk.api() as api,
        walk.anonymous() as browser,
        walk.sandbox() as sandbox,
        # The browser at the provider: the provider's answers (a code in a redirect) are not Grantline's.
        httpx.AsyncClient(timeout=30) as at_provider,
    ):
        # 1. The provider app: a client registered at the provider, then given to Grantline. The sandbox
        # puts the canary in every value it issues and makes tokens short-lived.
        created = await sandbox.post(
            "/_sandbox/clients", json={"client_id": walk.client_id, "client_secret": walk.client_secret}
        )
        assert created.status_code == 201, created.text
        settings = await sandbox.put(
            "/_sandbox/settings", json={"canary": walk.canary, "expires_in": TOKEN_LIFETIME_SECONDS}
        )
        assert settings.status_code == 200, settings.text
        app = await api.put(
            f"/v1/provider-apps/{PROVIDER}",
            json={
                "client_id": walk.client_id,
                "client_secret": walk.client_secret,
                "scopes": ["profile", "read"],
            },
        )
        assert app.status_code == 200, app.text
        assert app.json()["has_client_secret"] is True

        # 2. A run that needs the provider is held: the user has not connected it yet.
        held = await runner.request_run(
            tenant_id, run_id, USER, APP_ID, requirements=[PROVIDER], trigger="manual"
        )
        assert isinstance(held, RunHeld), held
        assert held.message.startswith("Missing required connections: "), held.message
        assert [m.id for m in held.missing] == [PROVIDER]

        # 3. The user connects: initiate, the provider's authorize redirect, the callback.
        initiated = await api.post(
            "/v1/connections/initiate", json={"user_id": USER, "provider": PROVIDER, "return_to": return_to}
        )
        assert initiated.status_code == 200, initiated.text
        connection_id = initiated.json()["connection_id"]
        authorized = await at_provider.get(initiated.json()["authorize_url"])
        assert authorized.status_code == 302, authorized.text
        callback_url = authorized.headers["location"]
        assert callback_url.startswith(f"{info['api_url']}/v1/oauth/callback?")
        assert walk.canary in _query(callback_url)["code"]  # the sandbox really issues canary values
        landed = await browser.get(callback_url, follow_redirects=False)
        assert landed.status_code == 303, landed.text
        outcome = _query(landed.headers["location"])
        assert landed.headers["location"].startswith(return_to)
        assert outcome["status"] == "connected", outcome
        assert outcome["connection_id"] == connection_id

        # 4. The held run resumes.
        admitted = await runner.wait_until_admitted(run_id, timeout=EVENT_TIMEOUT)
        assert admitted.resumed is True

        # 5. A tool call of the run resolves the user's token.
        first = await runner.resolve(run_id, PROVIDER, tool="list_messages")
        first_token = first.access_token.get_secret_value()
        walk.issued.add(first_token)
        assert first_token.startswith(f"sbx_at_{walk.canary}_")
        assert first.connection_id == connection_id
        # 5b. A tool holding only the run's grant calls the provider's API through the proxy.
        proxy_url = str(info["proxy_url"])
        async with proxy_client(proxy_url, PROVIDER, grant=runner.grant(run_id), tool="list_items") as tool:
            proxied = raise_for_proxy_error(await tool.get("items"))
        assert proxied.status_code == 200 and walk.canary not in proxied.text

        # 6. The token is renewed in the background (nothing resolves meanwhile), and a resolve gets
        # the new one.
        metrics_url = str(info["services"]["refresher"]).replace("/readyz", "/metrics")
        refreshed_before = await _refresher_refreshes(browser, metrics_url)
        grants_before = await _refresh_grants(sandbox)
        last_refreshed_before = (await _connection(api, connection_id))["last_refreshed_at"]

        async def renewed_in_background() -> bool:
            connection = await _connection(api, connection_id)
            return (
                connection["last_refreshed_at"] not in (None, last_refreshed_before)
                and await _refresh_grants(sandbox) > grants_before
                and await _refresher_refreshes(browser, metrics_url) > refreshed_before
            )

        await wait_for_async(renewed_in_background, timeout=EVENT_TIMEOUT, interval=0.25)
        second = await runner.resolve(run_id, PROVIDER, tool="send_message")
        second_token = second.access_token.get_secret_value()
        walk.issued.add(second_token)
        walk.issued.update(await _refresh_tokens_sent(sandbox))
        assert second_token.startswith(f"sbx_at_{walk.canary}_") and second_token != first_token

        # 7. The user revokes: the in-flight run is told, and its next resolve fails.
        async def first_revocation() -> RunConnectionRevoked:
            async for revocation in runner.revocations(run_id):
                return revocation
            raise AssertionError("the run finished before hearing of the revocation")

        told = asyncio.create_task(first_revocation())
        revoked = await api.delete(f"/v1/connections/{connection_id}")
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["status"] == "revoked"
        revocation = await asyncio.wait_for(told, EVENT_TIMEOUT)
        assert revocation.connection_id == connection_id and revocation.provider == PROVIDER
        with pytest.raises(ResolveError) as refused:
            await runner.resolve(run_id, PROVIDER, tool="send_message")
        assert refused.value.code == ErrorCode.REVOKED
        async with proxy_client(proxy_url, PROVIDER, grant=runner.grant(run_id), tool="list_items") as tool:
            after = await tool.get("items")
        assert after.headers["grantline-error"] == "revoked", after.text
        assert (await _connection(api, connection_id))["status"] == "revoked"
        grant = runner.grant(run_id)
        await runner.finish(run_id)

        # 7b. The finished run's grant resolves nothing more, whoever presents it.
        async def grant_spent() -> bool:
            try:
                await runner.resolve(grant=grant, provider=PROVIDER, tool="after_finish")
            except ResolveError as error:
                return error.code == ErrorCode.FORBIDDEN
            return False

        await wait_for_async(grant_spent, timeout=EVENT_TIMEOUT)

        # 8. The audit log shows every step, and its hash chain verifies.
        # Every resolve is recorded, refused ones too (the revoked call and those after the finish).
        tool_calls = {
            (run_id, APP_ID, "list_messages"),
            (run_id, APP_ID, "list_items"),  # through the proxy, which resolves for the tool
            (run_id, APP_ID, "send_message"),
            (run_id, APP_ID, "after_finish"),
        }

        def resolved_calls(records: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
            return {(r["run_id"], r["app_id"], r["tool"]) for r in records if r["action"] == "token.resolved"}

        async def audited() -> list[dict[str, Any]] | None:
            # Records arrive asynchronously (the vault batches its resolve records): wait for all.
            response = await api.get("/v1/audit", params={"user_id": USER, "limit": 500})
            assert response.status_code == 200, response.text
            records = [item["record"] for item in response.json()["records"]]
            actions = {r["action"] for r in records}
            return records if actions >= AUDITED_STEPS and resolved_calls(records) >= tool_calls else None

        records = await wait_for_async(audited, timeout=EVENT_TIMEOUT, interval=0.25)
        assert resolved_calls(records) == tool_calls
        after_finish = [r for r in records if r.get("tool") == "after_finish"]
        assert after_finish and all(r["outcome"] == "denied" for r in after_finish)
        assert all(
            r["connection_id"] == connection_id
            for r in records
            if r["action"] in AUDITED_STEPS and r.get("tool") != "after_finish"
        )
        verified = _grantline("audit", "verify", tenant_id, database_url=str(info["database_url"]))
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert verified.stdout.startswith(f"ok      {tenant_id}:"), verified.stdout

        # Every service's metrics page is an HTTP response too (labels must not carry a secret).
        for name, ready_url in info["services"].items():
            if name != "sandbox":
                assert (await browser.get(str(ready_url).replace("/readyz", "/metrics"))).status_code == 200

    # The run was held once and admitted exactly once (the streams are the record of what was said),
    # and the connection's life is on CONNECTIONS: granted, refreshed (in the background), revoked.
    streams = await read_all_streams(dev_stack)
    said = [e["type"] for e in _events(streams, "RUNS") if e.get("run_id") == run_id]
    assert said.count("runs.held") == 1 and said.count("runs.admitted") == 1, said
    assert said.count("runs.connection_revoked") == 1, said
    lived = [e["type"] for e in _events(streams, "CONNECTIONS") if e.get("connection_id") == connection_id]
    assert lived[0] == "connections.granted" and lived[-1] == "connections.revoked", lived
    assert "connections.refreshed" in lived, lived

    # 9. No secret outside the vault (and the resolve replies the runner received). Each scan first
    # proves it reads real content: the connection id is in events, columns, responses and spans.
    assert scan_stream_messages(streams, [connection_id])
    assert not scan_stream_messages(streams, walk.secrets)
    http_leaks = [
        f"{r.request.method} {r.request.url.path} -> {r.status_code}"
        for r in walk.responses
        for secret in walk.secrets
        if secret in r.text or secret in str(r.headers)
    ]
    assert any(connection_id in r.text for r in walk.responses) and not http_leaks
    assert scan_database(str(info["database_url"]), [connection_id])[1]
    scanned, column_leaks = scan_database(str(info["database_url"]), walk.secrets)
    assert scanned > 0 and not column_leaks
    assert not scan_log_files(service_logs(dev_stack), walk.secrets)

    # SIGTERM stops every service, NATS and Postgres, and `grantline dev` exits 0; the shutdown logs
    # are clean too.
    assert dev_stack.stop() == 0, dev_stack.output()
    assert "Stopped." in dev_stack.output()
    assert scan_log_files(service_logs(dev_stack), [connection_id])  # the spans of the walk
    assert not scan_log_files(service_logs(dev_stack), walk.secrets)


def _events(streams: dict[str, list[tuple[int, str, bytes]]], stream: str) -> list[dict[str, Any]]:
    return [json.loads(blob.split(b"\n", 1)[1]) for _, _, blob in streams[stream]]


def _grantline(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    """Run the `grantline` CLI as an operator would, against the stack's database."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GRANTLINE_")}
    # The same environment as the stack's services: development keys (checkpoints), its database.
    env.update(GRANTLINE_DATABASE_URL=database_url, GRANTLINE_ENVIRONMENT="development")
    return subprocess.run(
        [sys.executable, "-m", "grantline.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
