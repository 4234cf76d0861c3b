"""Every fault switch, per endpoint, per profile and per grant type."""

import json
import time

import pytest
from sandbox_support import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, query_of

BASE = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "scope": "read"}
CREDENTIALS = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}


async def fresh_tokens(http, profile="standard"):
    response = await http.get(f"/p/{profile}/authorize", params=BASE)
    code = query_of(response)["code"]
    body = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI, **CREDENTIALS}
    if profile == "rotating":
        reply = await http.post(
            f"/p/{profile}/token",
            data={k: v for k, v in body.items() if k not in CREDENTIALS},
            auth=(CLIENT_ID, CLIENT_SECRET),
        )
    else:
        reply = await http.post(f"/p/{profile}/token", data=body)
    assert reply.status_code == 200, reply.text
    return reply.json()


async def refresh(http, refresh_token):
    return await http.post(
        "/p/standard/token",
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, **CREDENTIALS},
    )


async def add_fault(http, **fault):
    response = await http.post("/_sandbox/faults", json=fault)
    assert response.status_code == 201, response.text
    return response.json()


async def test_5xx_for_n_requests_then_recovery(http):
    tokens = await fresh_tokens(http)
    fault = await add_fault(http, endpoint="token", status=503, times=2)
    assert fault["id"].startswith("fault-")
    assert (await refresh(http, tokens["refresh_token"])).status_code == 503
    assert (await refresh(http, tokens["refresh_token"])).status_code == 503
    assert (await refresh(http, tokens["refresh_token"])).status_code == 200
    assert (await http.get("/_sandbox/faults")).json() == []


async def test_always_failing_until_removed(http):
    fault = await add_fault(http, endpoint="userinfo", status=500)
    for _ in range(3):
        assert (await http.get("/p/standard/userinfo")).status_code == 500
    assert (await http.delete(f"/_sandbox/faults/{fault['id']}")).status_code == 204
    assert (await http.get("/p/standard/userinfo")).status_code == 401
    assert (await http.delete(f"/_sandbox/faults/{fault['id']}")).status_code == 404


async def test_429_with_retry_after(http):
    await add_fault(http, endpoint="token", status=429, retry_after=7, times=1)
    response = await http.post("/p/standard/token", data={"grant_type": "refresh_token"})
    assert response.status_code == 429 and response.headers["retry-after"] == "7"
    assert response.json()["error"] == "rate_limited"


async def test_malformed_body(http):
    tokens = await fresh_tokens(http)
    await add_fault(http, endpoint="token", malformed=True, times=1)
    response = await refresh(http, tokens["refresh_token"])
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    with pytest.raises(json.JSONDecodeError):
        response.json()


async def test_slow_endpoint_still_answers(http):
    await add_fault(http, endpoint="authorize", delay_ms=150, times=1)
    started = time.monotonic()
    response = await http.get("/p/standard/authorize", params=BASE)
    assert time.monotonic() - started >= 0.15
    assert query_of(response)["code"]


async def test_slow_and_failing_combined(http):
    await add_fault(http, endpoint="revoke", delay_ms=50, status=502, times=1)
    started = time.monotonic()
    response = await http.post("/p/standard/revoke", data={"token": "x", **CREDENTIALS})
    assert response.status_code == 502 and time.monotonic() - started >= 0.05


async def test_faults_are_scoped_to_a_profile(http):
    await add_fault(http, profile="rotating", endpoint="authorize", status=500)
    assert (await http.get("/p/rotating/authorize", params=BASE)).status_code == 500
    assert (await http.get("/p/standard/authorize", params=BASE)).status_code == 302


async def test_faults_are_scoped_to_a_grant_type(http):
    tokens = await fresh_tokens(http)
    await add_fault(http, endpoint="token", grant_type="refresh_token", status=500)
    await fresh_tokens(http)  # code exchange unaffected
    assert (await refresh(http, tokens["refresh_token"])).status_code == 500


async def test_faulted_requests_are_recorded_with_the_fault(http):
    fault = await add_fault(http, endpoint="userinfo", status=503, times=1)
    await http.get("/p/standard/userinfo")
    recorded = (await http.get("/_sandbox/requests", params={"endpoint": "userinfo"})).json()
    assert recorded[-1]["fault"] == fault["id"] and recorded[-1]["status"] == 503


async def test_clearing_faults(http):
    await add_fault(http, status=500)
    assert (await http.delete("/_sandbox/faults")).status_code == 204
    assert (await http.get("/p/standard/authorize", params=BASE)).status_code == 302


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ({}, "a fault needs delay_ms, status or malformed"),
        ({"status": 200}, "status"),
        ({"status": 500, "malformed": True}, "choose status or malformed"),
        ({"delay_ms": 5, "retry_after": 3}, "retry_after goes with a status"),
        ({"endpoint": "everything", "status": 500}, "endpoint"),
        ({"profile": "nope", "status": 500}, "unknown profile 'nope'"),
        ({"status": 500, "colour": "red"}, "colour"),
    ],
)
async def test_invalid_fault_specs_are_rejected(http, fault, message):
    response = await http.post("/_sandbox/faults", json=fault)
    assert response.status_code == 400 and message in response.json()["error"]


async def test_faults_can_be_installed_in_process(http, state):
    from grantline.sandbox import Fault

    state.add_fault(Fault(endpoint="token", status=504, times=1))
    assert (await http.post("/p/standard/token", data={})).status_code == 504
