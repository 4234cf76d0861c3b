"""Two connections of one user to one provider, each made with its own OAuth client (a named provider
app: a second shop's custom app), against `grantline dev` run as a user runs it. Both resolve; the
refresher renews both in the background, each with its own client (the sandbox refuses a refresh
from any other client, and records which one it saw); revoking tells the provider with that client;
neither client secret appears in a response, a stream message, a log file or a database column."""

from __future__ import annotations

import base64
import secrets
import uuid
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest
from e2e_dev_stack import DevStackProcess
from e2e_leak_scan import read_all_streams, scan_database, scan_log_files, scan_stream_messages, service_logs
from fixtures.waiting import wait_for_async

from grantline.contract import RunAdmitted
from grantline.runner import RunnerClient

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

PROVIDER = "sandbox"
USER = "grace@example.com"
APPS = ("shop-b", "shop-c")
RETURN_TO = "http://127.0.0.1:3000/e2e/done"
EVENT_TIMEOUT = 30.0


def _query(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def _client_of(recorded: dict[str, Any]) -> str | None:
    """The client a request the sandbox recorded authenticated as (body or Basic)."""
    body = recorded.get("body") or {}
    if body.get("client_id"):
        return str(body["client_id"])
    header = {k.lower(): v for k, v in (recorded.get("headers") or {}).items()}.get("authorization", "")
    if header.startswith("Basic "):
        return unquote(base64.b64decode(header[6:]).decode().split(":", 1)[0])
    return None


async def _recorded(sandbox: httpx.AsyncClient, **filters: str) -> list[dict[str, Any]]:
    response = await sandbox.get("/_sandbox/requests", params=filters)
    assert response.status_code == 200, response.text
    return list(response.json())


async def test_e2e_connections_with_their_own_clients(
    dev_stack: DevStackProcess, runner: RunnerClient
) -> None:
    info = dev_stack.info
    clients = {
        name: (f"e2e-{name}-{secrets.token_hex(4)}", f"sbx_secret_{name}_{secrets.token_urlsafe(24)}")
        for name in APPS
    }
    client_secrets = [secret for _, secret in clients.values()]
    responses: list[httpx.Response] = []

    async def keep(response: httpx.Response) -> None:
        await response.aread()
        responses.append(response)

    async with (
        httpx.AsyncClient(
            base_url=str(info["api_url"]),
            headers={"Authorization": f"Bearer {info['api_key']}"},
            event_hooks={"response": [keep]},
            timeout=30,
        ) as api,
        httpx.AsyncClient(event_hooks={"response": [keep]}, timeout=30) as browser,
        httpx.AsyncClient(base_url=str(info["sandbox_url"]), timeout=30) as sandbox,
        httpx.AsyncClient(timeout=30) as at_provider,
    ):
        # Two clients registered at the provider (two shops' custom apps), given to Grantline by name.
        assert (await sandbox.put("/_sandbox/settings", json={"expires_in": 6})).status_code == 200
        for name, (client_id, secret) in clients.items():
            created = await sandbox.post(
                "/_sandbox/clients", json={"client_id": client_id, "client_secret": secret}
            )
            assert created.status_code == 201, created.text
            app = await api.put(
                f"/v1/provider-apps/{PROVIDER}/apps/{name}",
                json={"client_id": client_id, "client_secret": secret, "scopes": ["profile", "read"]},
            )
            assert app.status_code == 200, app.text
            assert app.json()["name"] == name and app.json()["has_client_secret"] is True

        # The user connects twice, each time with another app.
        connection_ids: dict[str, str] = {}
        for name, (client_id, _) in clients.items():
            initiated = await api.post(
                "/v1/connections/initiate",
                json={
                    "user_id": USER,
                    "provider": PROVIDER,
                    "return_to": RETURN_TO,
                    "provider_app": name,
                    "name": name,
                },
            )
            assert initiated.status_code == 200, initiated.text
            assert _query(initiated.json()["authorize_url"])["client_id"] == client_id
            authorized = await at_provider.get(initiated.json()["authorize_url"])
            assert authorized.status_code == 302, authorized.text
            landed = await browser.get(authorized.headers["location"], follow_redirects=False)
            assert landed.status_code == 303, landed.text
            assert _query(landed.headers["location"])["status"] == "connected"
            connection_ids[name] = initiated.json()["connection_id"]
        exchanges = await _recorded(sandbox, endpoint="token", grant_type="authorization_code")
        assert [_client_of(r) for r in exchanges[-2:]] == [clients[name][0] for name in APPS]

        listed = (await api.get("/v1/connections", params={"user_id": USER})).json()["connections"]
        assert {c["connection_id"]: c["provider_app"] for c in listed} == {
            v: k for k, v in connection_ids.items()
        }

        # A run resolves both connections by id.
        run_id = f"run-{uuid.uuid4()}"
        admitted = await runner.request_run(
            str(info["tenant_id"]), run_id, USER, "e2e-shops", requirements=[PROVIDER]
        )
        assert isinstance(admitted, RunAdmitted), admitted
        first = {
            name: (await runner.resolve(run_id, PROVIDER, connection_id=cid)).access_token.get_secret_value()
            for name, cid in connection_ids.items()
        }
        assert len(set(first.values())) == 2

        # The refresher renews both in the background, each with its own client.
        async def both_renewed() -> bool:
            connections = (await api.get("/v1/connections", params={"user_id": USER})).json()["connections"]
            refreshed = {c["connection_id"] for c in connections if c["last_refreshed_at"]}
            seen = {_client_of(r) for r in await _recorded(sandbox, grant_type="refresh_token")}
            return refreshed >= set(connection_ids.values()) and seen >= {c for c, _ in clients.values()}

        await wait_for_async(both_renewed, timeout=EVENT_TIMEOUT, interval=0.25)
        for name, cid in connection_ids.items():
            renewed = (
                await runner.resolve(run_id, PROVIDER, connection_id=cid)
            ).access_token.get_secret_value()
            assert renewed != first[name]
        connections = (await api.get("/v1/connections", params={"user_id": USER})).json()["connections"]
        assert {c["status"] for c in connections} == {"active"}  # no refresh was refused for a wrong client

        # Revoking tells the provider with each connection's own client.
        for cid in connection_ids.values():
            assert (await api.delete(f"/v1/connections/{cid}")).status_code == 200
        revocations = await _recorded(sandbox, endpoint="revoke")
        assert {_client_of(r) for r in revocations[-2:]} == {c for c, _ in clients.values()}
        await runner.finish(run_id)

    # Neither client secret is anywhere outside the vault's sealed columns.
    assert any(connection_ids["shop-b"] in r.text for r in responses)
    assert not [
        r.request.url.path for r in responses for s in client_secrets if s in r.text or s in str(r.headers)
    ]
    streams = await read_all_streams(dev_stack)
    assert scan_stream_messages(streams, list(connection_ids.values()))
    assert not scan_stream_messages(streams, client_secrets)
    scanned, column_leaks = scan_database(str(info["database_url"]), client_secrets)
    assert scanned > 0 and not column_leaks
    assert not scan_log_files(service_logs(dev_stack), client_secrets)
