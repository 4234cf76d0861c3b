"""Every sandbox profile, driven end to end with the provider library and the sandbox catalogue."""

from datetime import UTC, datetime
from urllib.parse import parse_qs

import pytest
from sandbox_support import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, SANDBOX_URL, query_of

from grantline.providers.token_response import (
    TokenResponseError,
    account_from_userinfo,
    build_revocation_request,
    build_userinfo_request,
    parse_token_response,
)
from grantline.sandbox import PROFILES


def now():
    return datetime.now(UTC)


async def userinfo(flow, provider, tokens):
    url, headers, _, _ = build_userinfo_request(flow.definition(provider), tokens.access_token)
    return await flow.http.get(url, headers=headers)


def test_catalogue_entries_mirror_the_profiles(catalogue):
    for name, profile in PROFILES.items():
        provider = "sandbox" if name == "standard" else f"sandbox_{name}"
        definition = catalogue.get(provider)
        if profile.api_key_only:
            assert definition.auth == "api_key"
            continue
        oauth = definition.oauth
        assert oauth.token_url == f"{SANDBOX_URL}/p/{name}/token"
        assert oauth.client_auth == profile.client_auth, name
        assert oauth.token_body_format == profile.body_format, name
        assert oauth.pkce == profile.pkce, name
        assert oauth.scopes.param == profile.scope_param, name
        assert oauth.token_location == profile.token_location, name
        assert definition.refresh.rotating == profile.rotating, name
        assert definition.refresh.non_expiring == (profile.expires_in is None), name
        assert (oauth.issuer is not None) == profile.sends_iss, name


async def test_standard_profile_full_lifecycle(flow):
    response, verifier = await flow.authorize("sandbox")
    params = query_of(response)
    assert params["state"] == "st-1"
    assert params["iss"] == f"{SANDBOX_URL}/p/standard"
    assert params["code"].startswith("sbx_code_")
    reply = await flow.exchange("sandbox", params["code"], verifier)
    tokens = parse_token_response(flow.definition("sandbox"), reply.json(), now=now())
    assert tokens.access_token.get_secret_value().startswith("sbx_at_")
    assert tokens.refresh_token.get_secret_value().startswith("sbx_rt_")
    assert tokens.expires_at is not None and tokens.scopes == ("profile", "read")

    info = await userinfo(flow, "sandbox", tokens)
    account = account_from_userinfo(flow.definition("sandbox"), info.json())
    assert account.id == "sandbox-user" and account.name == "sandbox-user@sandbox.grantline.test"

    refreshed_reply = await flow.refresh("sandbox", tokens.refresh_token.get_secret_value())
    refreshed = parse_token_response(
        flow.definition("sandbox"), refreshed_reply.json(), now=now(), previous=tokens
    )
    assert refreshed.access_token != tokens.access_token and not refreshed.refresh_token_rotated

    revoke = build_revocation_request(
        flow.definition("sandbox"),
        token=tokens.refresh_token,
        token_type_hint="refresh_token",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
    )
    assert (await flow.send(revoke)).status_code == 200
    assert (await userinfo(flow, "sandbox", refreshed)).status_code == 401
    dead = await flow.refresh("sandbox", tokens.refresh_token.get_secret_value())
    assert dead.status_code == 400 and dead.json()["error"] == "invalid_grant"


async def test_slack_profile_nests_the_user_token_and_rotates(flow):
    response, _ = await flow.authorize("sandbox_slack", scopes=["read", "write"])
    assert response.request.url.params["user_scope"] == "read,write"
    assert "scope" not in response.request.url.params
    params = query_of(response)
    assert "iss" not in params
    reply = await flow.exchange("sandbox_slack", params["code"], None)
    body = reply.json()
    assert body["ok"] is True and "access_token" not in body
    assert body["authed_user"]["access_token"].startswith("sbx_at_")
    tokens = parse_token_response(flow.definition("sandbox_slack"), body, now=now())
    assert tokens.account.id.startswith("U") and tokens.account.name == "Sandbox Team"
    assert tokens.scopes == ("read", "write")

    refreshed = (await flow.refresh("sandbox_slack", tokens.refresh_token.get_secret_value())).json()
    assert refreshed["access_token"].startswith("sbx_at_")  # top level on refresh, as Slack does
    parsed = parse_token_response(flow.definition("sandbox_slack"), refreshed, now=now(), previous=tokens)
    assert parsed.refresh_token_rotated

    reuse = (await flow.refresh("sandbox_slack", tokens.refresh_token.get_secret_value())).json()
    assert reuse == {"ok": False, "error": "invalid_refresh_token"}
    with pytest.raises(TokenResponseError) as caught:
        parse_token_response(flow.definition("sandbox_slack"), reuse, now=now())
    assert caught.value.is_invalid_grant


async def test_slack_revoke_uses_the_token_as_bearer(flow):
    tokens = await flow.connect("sandbox_slack")
    request = build_revocation_request(
        flow.definition("sandbox_slack"),
        token=tokens.access_token,
        token_type_hint=None,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
    )
    reply = await flow.send(request)
    assert reply.json() == {"ok": True, "revoked": True}
    assert (await flow.send(request)).json() == {"ok": False, "error": "invalid_auth"}


async def test_slack_mcp_profile_requires_pkce_and_answers_top_level(flow):
    raw = await flow.http.get(
        f"{SANDBOX_URL}/p/slack_mcp/authorize",
        params={"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI, "state": "s"},
    )
    assert query_of(raw)["error"] == "invalid_request"
    tokens = await flow.connect("sandbox_slack_mcp")
    assert tokens.account.id.startswith("U")
    assert tokens.refresh_token is not None


async def test_google_profile_refresh_token_needs_offline_and_is_omitted_on_refresh(flow):
    # Without access_type=offline there is no refresh token (the catalogue entry always sends it).
    raw = await flow.http.get(
        f"{SANDBOX_URL}/p/google/authorize",
        params={
            "response_type": "code",
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT_URI,
            "scope": "read",
        },
    )
    online = await flow.exchange("sandbox_google", query_of(raw)["code"], None)
    assert "refresh_token" not in online.json()

    tokens = await flow.connect("sandbox_google")
    assert tokens.refresh_token is not None and tokens.id_token is not None
    reply = await flow.refresh("sandbox_google", tokens.refresh_token.get_secret_value())
    assert "refresh_token" not in reply.json()
    refreshed = parse_token_response(
        flow.definition("sandbox_google"), reply.json(), now=now(), previous=tokens
    )
    assert refreshed.refresh_token == tokens.refresh_token
    again = await flow.refresh("sandbox_google", tokens.refresh_token.get_secret_value())
    assert again.status_code == 200


async def test_github_profile_non_expiring_without_refresh_token(flow):
    tokens = await flow.connect("sandbox_github", scopes=["read", "write"])
    assert tokens.expires_at is None and tokens.refresh_token is None
    assert tokens.scopes == ("read", "write")
    info = await userinfo(flow, "sandbox_github", tokens)
    assert isinstance(info.json()["id"], int) and info.json()["login"] == "sandbox-user"


async def test_github_profile_replies_form_encoded_unless_json_is_accepted(flow):
    response, _ = await flow.authorize("sandbox_github")
    reply = await flow.http.post(
        f"{SANDBOX_URL}/p/github/token",
        data={
            "grant_type": "authorization_code",
            "code": query_of(response)["code"],
            "redirect_uri": REDIRECT_URI,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )
    assert reply.headers["content-type"].startswith("application/x-www-form-urlencoded")
    assert parse_qs(reply.text)["access_token"][0].startswith("sbx_at_")


async def test_github_profile_reports_errors_with_http_200(flow):
    reply = await flow.exchange("sandbox_github", "sbx_code_nope", None)
    assert reply.status_code == 200 and reply.json()["error"] == "bad_verification_code"


async def test_rotating_profile_rotates_and_rejects_reuse(flow, state):
    tokens = await flow.connect("sandbox_rotating")
    first_rt = tokens.refresh_token.get_secret_value()
    reply = await flow.refresh("sandbox_rotating", first_rt)
    rotated = parse_token_response(
        flow.definition("sandbox_rotating"), reply.json(), now=now(), previous=tokens
    )
    assert rotated.refresh_token_rotated
    second_rt = rotated.refresh_token.get_secret_value()
    assert second_rt != first_rt

    reuse = await flow.refresh("sandbox_rotating", first_rt)
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    # Reuse revokes the whole grant, as the security BCP recommends.
    assert (await flow.refresh("sandbox_rotating", second_rt)).json()["error"] == "invalid_grant"
    assert state.refresh_count(first_rt) == 2 and state.refresh_count(second_rt) == 1


async def test_pkce_profile_requires_a_matching_verifier(flow):
    response, _verifier = await flow.authorize("sandbox_pkce")
    code = query_of(response)["code"]
    wrong = await flow.exchange("sandbox_pkce", code, "x" * 64)
    assert wrong.status_code == 400 and "PKCE" in wrong.json()["error_description"]
    tokens = await flow.connect("sandbox_pkce")
    assert tokens.refresh_token is not None


async def test_pkce_profile_enforces_basic_auth_and_json(flow):
    response, _verifier = await flow.authorize("sandbox_pkce")
    code = query_of(response)["code"]
    as_form = await flow.http.post(
        f"{SANDBOX_URL}/p/pkce/token", data={"grant_type": "authorization_code", "code": code}
    )
    assert as_form.status_code == 400 and "application/json" in as_form.json()["error_description"]
    body_auth = await flow.http.post(
        f"{SANDBOX_URL}/p/pkce/token",
        json={
            "grant_type": "authorization_code",
            "code": code,
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
        },
    )
    assert body_auth.status_code == 401 and body_auth.json()["error"] == "invalid_client"


async def test_mcp_scopeless_profile_rejects_scope_and_requires_resource(flow):
    base = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI}
    with_scope = await flow.http.get(
        f"{SANDBOX_URL}/p/mcp_scopeless/authorize", params={**base, "scope": "read", "resource": "r"}
    )
    assert query_of(with_scope)["error"] == "invalid_scope"
    without_resource = await flow.http.get(f"{SANDBOX_URL}/p/mcp_scopeless/authorize", params=base)
    assert query_of(without_resource)["error"] == "invalid_target"

    response, _verifier = await flow.authorize("sandbox_mcp_scopeless", scopes=["read"])
    assert "scope=" not in str(response.request.url)
    tokens = await flow.connect("sandbox_mcp_scopeless")
    info = await userinfo(flow, "sandbox_mcp_scopeless", tokens)
    assert info.json()["aud"] == f"{SANDBOX_URL}/p/mcp_scopeless/mcp"


async def test_api_key_profile(flow, http):
    key = (await http.post("/_sandbox/api-keys", json={"subject": "bot"})).json()["api_key"]
    assert key.startswith("sbx_key_")
    ok = await http.get("/p/api_key/userinfo", headers={"X-Api-Key": key})
    assert ok.json() == {"sub": "bot", "key_kind": "api_key"}
    assert (await http.post("/p/api_key/revoke", data={"token": key})).status_code == 200
    assert (await http.get("/p/api_key/userinfo", headers={"X-Api-Key": key})).status_code == 401
    assert (await http.get("/p/api_key/authorize")).status_code == 404
