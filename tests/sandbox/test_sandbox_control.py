"""The control API: clients, recording, counters, token status, provider-side revocation, reset."""

import asyncio
import contextlib
import socket

import httpx
from sandbox_support import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, query_of

from grantline.sandbox import SandboxState, create_sandbox_app, serve

BASE = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "scope": "read"}
CREDENTIALS = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}


async def connect(http, **params):
    code = query_of(await http.get("/p/standard/authorize", params={**BASE, **params}))["code"]
    body = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, **CREDENTIALS}
    return (await http.post("/p/standard/token", data=body)).json()


async def test_clients_are_registered_through_the_control_api(http):
    created = await http.post(
        "/_sandbox/clients", json={"redirect_uris": ["https://app.test/cb"], "profiles": ["standard"]}
    )
    assert created.status_code == 201
    client = created.json()
    assert client["client_id"].startswith("sbx_client_") and client["client_secret"].startswith("sbx_secret_")
    response = await http.get(
        "/p/standard/authorize",
        params={**BASE, "client_id": client["client_id"], "redirect_uri": "https://app.test/cb"},
    )
    assert "code" in query_of(response)
    ids = [entry["client_id"] for entry in (await http.get("/_sandbox/clients")).json()]
    assert client["client_id"] in ids
    assert (await http.delete(f"/_sandbox/clients/{client['client_id']}")).status_code == 204
    bad = await http.post("/_sandbox/clients", json={"profiles": ["nope"]})
    assert bad.status_code == 400


async def test_client_limited_to_profiles(http, state):
    state.register_client("only-std", "s", profiles=["standard"])
    body = {
        "grant_type": "refresh_token",
        "refresh_token": "x",
        "client_id": "only-std",
        "client_secret": "s",
    }
    assert (await http.post("/p/google/token", data=body)).json()["error"] == "unauthorized_client"


async def test_every_request_is_recorded_in_full(http):
    await connect(http)
    recorded = (await http.get("/_sandbox/requests", params={"endpoint": "token"})).json()
    assert len(recorded) == 1
    entry = recorded[0]
    assert entry["profile"] == "standard" and entry["grant_type"] == "authorization_code"
    assert entry["body"]["client_secret"] == CLIENT_SECRET and entry["status"] == 200
    authorize = (await http.get("/_sandbox/requests", params={"endpoint": "authorize"})).json()[0]
    assert authorize["query"]["client_id"] == CLIENT_ID and authorize["method"] == "GET"
    assert (await http.delete("/_sandbox/requests")).status_code == 204
    assert (await http.get("/_sandbox/requests")).json() == []


async def test_counters_count_refresh_grants_per_refresh_token(http, state):
    tokens = await connect(http)
    body = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"], **CREDENTIALS}
    await http.post("/p/standard/token", data=body)
    counters = (await http.get("/_sandbox/counters")).json()
    assert counters["refresh_grants_by_refresh_token"] == {tokens["refresh_token"]: 1}
    assert counters["token_requests_by_profile_and_grant"] == {
        "standard:authorization_code": 1,
        "standard:refresh_token": 1,
    }
    assert state.refresh_count(tokens["refresh_token"]) == 1


async def test_token_status(http):
    tokens = await connect(http)
    status = (await http.get(f"/_sandbox/tokens/{tokens['access_token']}")).json()
    assert status["kind"] == "access_token" and status["active"] and status["subject"] == "sandbox-user"
    assert (await http.get("/_sandbox/tokens/nope")).status_code == 404


async def test_provider_side_revocation_by_subject_and_token(http):
    alice = await connect(http, sandbox_user="alice")
    bob = await connect(http, sandbox_user="bob")
    revoked = (await http.post("/_sandbox/revoke", json={"subject": "alice"})).json()
    assert revoked == {"revoked": 1}
    alice_info = await http.get(
        "/p/standard/userinfo", headers={"Authorization": f"Bearer {alice['access_token']}"}
    )
    assert alice_info.status_code == 401
    body = {"grant_type": "refresh_token", "refresh_token": alice["refresh_token"], **CREDENTIALS}
    assert (await http.post("/p/standard/token", data=body)).json()["error"] == "invalid_grant"
    assert (await http.post("/_sandbox/revoke", json={"token": bob["access_token"]})).json() == {"revoked": 1}
    assert (await http.post("/_sandbox/revoke", json={})).status_code == 400


async def test_settings_round_trip_and_validation(http):
    assert (
        await http.put("/_sandbox/settings", json={"profile": "google", "expires_in": 5})
    ).status_code == 200
    view = (await http.get("/_sandbox/settings")).json()
    assert view["profiles"]["google"]["expires_in"] == 5
    assert (await http.put("/_sandbox/settings", json={"bogus": 1})).status_code == 400
    assert (
        await http.put("/_sandbox/settings", json={"profile": "nope", "expires_in": 1})
    ).status_code == 400


async def test_reset_forgets_everything_but_clients(http, state):
    await connect(http)
    await http.post("/_sandbox/faults", json={"status": 500, "endpoint": "userinfo"})
    assert (await http.post("/_sandbox/reset")).status_code == 204
    assert state.tokens == {} and state.faults.faults == [] and state.requests == []
    assert CLIENT_ID in state.clients


async def test_control_token_guards_the_control_api():
    guarded = SandboxState(control_token="let-me-in")
    transport = httpx.ASGITransport(app=create_sandbox_app(guarded))
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.test") as http:
        assert (await http.get("/_sandbox/health")).status_code == 401
        ok = await http.get("/_sandbox/health", headers={"Authorization": "Bearer let-me-in"})
        assert ok.status_code == 200 and "standard" in ok.json()["profiles"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def test_serve_runs_a_real_uvicorn_server():
    port = free_port()
    state = SandboxState()
    server = asyncio.create_task(serve("127.0.0.1", port, state))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            deadline = asyncio.get_running_loop().time() + 10
            while True:
                try:
                    response = await http.get("/_sandbox/health")
                    break
                except httpx.ConnectError:
                    assert asyncio.get_running_loop().time() < deadline, "sandbox did not start"
                    await asyncio.sleep(0.05)
            assert response.json()["status"] == "ok"
            created = (await http.post("/_sandbox/clients", json={})).json()
            assert created["client_id"] in state.clients
    finally:
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server
