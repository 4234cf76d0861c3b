"""The sandbox's small REST API (`/p/{profile}/api/...`) behaves as provider APIs document."""

from __future__ import annotations

API = "/p/standard/api"


async def _token(flow, scopes=("read", "write")) -> str:  # type: ignore[no-untyped-def]
    tokens = await flow.connect("sandbox", scopes=list(scopes))
    return tokens.access_token.get_secret_value()


async def test_records_are_per_user_and_writes_need_the_write_scope(http, flow) -> None:  # type: ignore[no-untyped-def]
    token = await _token(flow)
    auth = {"Authorization": f"Bearer {token}"}
    created = await http.post(f"{API}/items", json={"name": "a"}, headers=auth)
    assert created.status_code == 201
    assert (await http.get(f"{API}/items/{created.json()['id']}", headers=auth)).json()["name"] == "a"
    reader = {"Authorization": f"Bearer {await _token(flow, ('read',))}"}
    refused = await http.post(f"{API}/items", json={"name": "b"}, headers=reader)
    assert refused.status_code == 403 and 'error="insufficient_scope"' in refused.headers["www-authenticate"]


async def test_dead_or_missing_tokens_get_401_invalid_token(http, flow, state, clock) -> None:  # type: ignore[no-untyped-def]
    assert (await http.get(f"{API}/items")).status_code == 401
    token = await _token(flow)
    auth = {"Authorization": f"Bearer {token}"}
    assert (await http.get(f"{API}/items", headers=auth)).status_code == 200
    clock.advance(3601)  # expired upstream
    expired = await http.get(f"{API}/items", headers=auth)
    assert expired.status_code == 401 and 'error="invalid_token"' in expired.headers["www-authenticate"]
    fresh = await _token(flow)
    state.revoke_token(fresh)
    assert (await http.get(f"{API}/items", headers={"Authorization": f"Bearer {fresh}"})).status_code == 401
    # A token of another profile is not this API's.
    other = (await flow.connect("sandbox_github")).access_token.get_secret_value()
    assert (await http.get(f"{API}/items", headers={"Authorization": f"Bearer {other}"})).status_code == 401


async def test_large_bodies_events_redirects_and_rate_limits(http, flow) -> None:  # type: ignore[no-untyped-def]
    auth = {"Authorization": f"Bearer {await _token(flow)}"}
    large = await http.get(f"{API}/large?size=200000", headers=auth)
    assert len(large.content) == 200_000
    events = await http.get(f"{API}/events?count=2&interval_ms=0", headers=auth)
    assert events.headers["content-type"].startswith("text/event-stream")
    assert events.text.count("event: tick") == 2
    moved = await http.get(f"{API}/redirect?to=https://elsewhere.test/x", headers=auth)
    assert moved.status_code == 302 and moved.headers["location"] == "https://elsewhere.test/x"
    limited = await http.get(f"{API}/rate_limited?retry_after=3", headers=auth)
    assert limited.status_code == 429 and limited.headers["retry-after"] == "3"
    echoed = (await http.post(f"{API}/echo", headers={**auth, "X-A": "1"}, content=b"abc")).json()
    assert echoed["headers"]["authorization"] == "<credential>" and echoed["body_bytes"] == 3
