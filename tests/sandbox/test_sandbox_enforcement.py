"""What real providers enforce, the sandbox enforces too."""

import pytest
from sandbox_support import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, SANDBOX_URL, query_of

BASE = {
    "response_type": "code",
    "client_id": CLIENT_ID,
    "redirect_uri": REDIRECT_URI,
    "scope": "read",
    "state": "s",
}


async def authorize_code(http, profile="standard", **params):
    response = await http.get(f"/p/{profile}/authorize", params={**BASE, **params})
    return query_of(response)["code"]


async def exchange(http, code, **overrides):
    body = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        **overrides,
    }
    return await http.post("/p/standard/token", data={k: v for k, v in body.items() if v is not None})


async def test_unknown_client_gets_an_error_page_not_a_redirect(http):
    response = await http.get("/p/standard/authorize", params={**BASE, "client_id": "nobody"})
    assert response.status_code == 400 and "unknown client_id" in response.text
    assert "location" not in response.headers


async def test_unregistered_redirect_uri_is_refused(http):
    response = await http.get(
        "/p/standard/authorize", params={**BASE, "redirect_uri": "https://evil.test/cb"}
    )
    assert response.status_code == 400 and "not registered" in response.text


async def test_unknown_scope_and_response_type_redirect_with_errors(http):
    assert (
        query_of(await http.get("/p/standard/authorize", params={**BASE, "scope": "admin"}))["error"]
        == "invalid_scope"
    )
    bad_type = query_of(await http.get("/p/standard/authorize", params={**BASE, "response_type": "token"}))
    assert bad_type["error"] == "unsupported_response_type" and bad_type["state"] == "s"


async def test_plain_pkce_is_refused(http):
    params = {**BASE, "code_challenge": "a" * 43, "code_challenge_method": "plain"}
    assert query_of(await http.get("/p/standard/authorize", params=params))["error"] == "invalid_request"


async def test_wrong_client_secret_is_invalid_client(http):
    code = await authorize_code(http)
    response = await exchange(http, code, client_secret="wrong")
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


async def test_codes_are_single_use_and_replay_revokes_the_grant(http):
    code = await authorize_code(http)
    first = await exchange(http, code)
    assert first.status_code == 200
    replay = await exchange(http, code)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    info = await http.get(
        "/p/standard/userinfo", headers={"Authorization": f"Bearer {first.json()['access_token']}"}
    )
    assert info.status_code == 401


async def test_codes_expire(http, clock):
    code = await authorize_code(http)
    clock.advance(61)
    response = await exchange(http, code)
    assert response.json()["error_description"] == "authorization code expired"


async def test_code_ttl_is_configurable(http, clock):
    await http.put("/_sandbox/settings", json={"code_ttl_seconds": 5})
    code = await authorize_code(http)
    clock.advance(6)
    assert (await exchange(http, code)).json()["error"] == "invalid_grant"


async def test_redirect_uri_must_match_between_authorize_and_token(http, state):
    state.clients[
        CLIENT_ID
    ].redirect_uris = None  # any redirect accepted at authorize, still bound to the code
    code = await authorize_code(http, redirect_uri="https://grantline.test/other")
    response = await exchange(http, code)
    assert response.json()["error_description"] == "redirect_uri does not match the authorize request"


async def test_verifier_without_challenge_is_refused(http):
    code = await authorize_code(http)
    response = await exchange(http, code, code_verifier="v" * 43)
    assert response.json()["error"] == "invalid_grant"


async def test_refresh_token_of_another_client_is_invalid_grant(http, state):
    other = state.register_client("other", "other-secret")
    code = await authorize_code(http)
    refresh_token = (await exchange(http, code)).json()["refresh_token"]
    response = await http.post(
        "/p/standard/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "client_id": other.client_id,
            "client_secret": other.client_secret,
        },
    )
    assert response.json()["error"] == "invalid_grant"


async def test_refresh_cannot_widen_scope(http):
    code = await authorize_code(http)
    refresh_token = (await exchange(http, code)).json()["refresh_token"]
    response = await http.post(
        "/p/standard/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh_token,
            "scope": "read write",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )
    assert response.json()["error"] == "invalid_scope"


async def test_access_tokens_expire_with_a_lifetime_override(http, clock):
    await http.put("/_sandbox/settings", json={"profile": "standard", "expires_in": 2})
    tokens = (await exchange(http, await authorize_code(http))).json()
    assert tokens["expires_in"] == 2
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert (await http.get("/p/standard/userinfo", headers=headers)).status_code == 200
    clock.advance(3)
    expired = await http.get("/p/standard/userinfo", headers=headers)
    assert expired.status_code == 401 and "invalid_token" in expired.headers["www-authenticate"]


async def test_consent_page_approve_and_deny(http):
    page = await http.get("/p/standard/authorize", params={**BASE, "consent": "1"})
    assert page.status_code == 200 and 'id="approve"' in page.text and 'id="deny"' in page.text
    request_id = page.text.split('name="request_id" value="')[1].split('"')[0]
    approved = await http.post(
        "/p/standard/authorize/decision", data={"request_id": request_id, "decision": "approve"}
    )
    assert query_of(approved)["code"].startswith("sbx_code_")
    again = await http.post(
        "/p/standard/authorize/decision", data={"request_id": request_id, "decision": "approve"}
    )
    assert again.status_code == 400

    await http.put("/_sandbox/settings", json={"consent": True})
    page = await http.get("/p/standard/authorize", params=BASE)
    request_id = page.text.split('name="request_id" value="')[1].split('"')[0]
    denied = query_of(
        await http.post("/p/standard/authorize/decision", data={"request_id": request_id, "decision": "deny"})
    )
    assert (
        denied["error"] == "access_denied"
        and denied["state"] == "s"
        and denied["iss"].endswith("/p/standard")
    )


async def test_tokens_are_distinct_prefixed_and_carry_the_canary(http, state):
    await http.put("/_sandbox/settings", json={"canary": "CANARY42"})
    tokens = (await exchange(http, await authorize_code(http))).json()
    other = (await exchange(http, await authorize_code(http))).json()
    assert tokens["access_token"].startswith("sbx_at_CANARY42_")
    assert tokens["refresh_token"].startswith("sbx_rt_CANARY42_")
    assert tokens["access_token"] != other["access_token"]


async def test_sandbox_user_selects_the_subject(http):
    code = await authorize_code(http, sandbox_user="alice")
    token = (await exchange(http, code)).json()["access_token"]
    info = await http.get("/p/standard/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert info.json()["sub"] == "alice"


async def test_unknown_profile_is_404(http):
    assert (await http.get("/p/nope/authorize", params=BASE)).status_code == 404


@pytest.mark.parametrize("grant_type", ["password", "client_credentials", None])
async def test_unsupported_grant_types(http, grant_type):
    body = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    if grant_type:
        body["grant_type"] = grant_type
    response = await http.post("/p/standard/token", data=body)
    assert response.json()["error"] == "unsupported_grant_type"


async def test_revoking_a_token_of_another_client_is_refused(http, state):
    other = state.register_client("other", "other-secret")
    access_token = (await exchange(http, await authorize_code(http))).json()["access_token"]
    response = await http.post(
        "/p/standard/revoke",
        data={"token": access_token, "client_id": other.client_id, "client_secret": other.client_secret},
    )
    assert response.json()["error"] == "unauthorized_client"
    unknown = await http.post(
        "/p/standard/revoke", data={"token": "nope", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    )
    assert unknown.status_code == 200  # RFC 7009: unknown tokens are not an error


async def test_iss_uses_public_url_when_configured(http, state):
    state.public_url = "https://sandbox.example"
    response = await http.get("/p/standard/authorize", params=BASE)
    assert query_of(response)["iss"] == "https://sandbox.example/p/standard"
    assert SANDBOX_URL not in response.headers["location"]
