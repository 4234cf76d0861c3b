"""End to end with the sandbox and the real vault: connect, re-authorize with an added scope, revoke."""

from datetime import timedelta
from urllib.parse import quote

from fixtures.waiting import wait_for_async
from gateway_flow import (
    RETURN_TO,
    authorize,
    callback,
    count,
    query,
    sandbox_requests,
    setup_app,
    start,
)
from gateway_support import KEY_A, KEY_B, PUBLIC_URL, bearer, new_user
from sqlalchemy import func

from grantline.auth_gateway.adapters.tables import outbox, pending_authorizations


def code_exchanges(stack) -> int:
    return len([r for r in sandbox_requests(stack, "token") if r.grant_type == "authorization_code"])


async def test_connect_reauthorize_revoke(stack):
    await setup_app(stack)
    user = new_user()
    started = await start(stack, user)
    params = query(started["authorize_url"])
    assert params["code_challenge_method"] == "S256" and "code_verifier" not in started["authorize_url"]
    outcome = await callback(stack, await authorize(stack, started["authorize_url"]))
    assert outcome == {
        "status": "connected",
        "connection_id": started["connection_id"],
        "provider": "sandbox",
    }
    (exchange,) = [r for r in sandbox_requests(stack, "token") if r.grant_type == "authorization_code"]
    assert exchange.body.get("code_verifier")  # the gateway's PKCE verifier reached the provider

    listed = (await stack.client.get(f"/v1/connections?user_id={user}", headers=bearer(KEY_A))).json()
    (connection,) = listed["connections"]
    assert connection["status"] == "active" and connection["connection_id"] == started["connection_id"]
    assert set(connection["scopes"]) == {"profile", "read"}
    assert "sbx_" not in str(listed)

    again = await start(stack, user, scopes=["write"], connection_id=started["connection_id"])
    assert again["connection_id"] == started["connection_id"] and again["reauthorize"]
    # Incremental scopes: the authorize URL asks for the union of granted and new.
    assert set(query(again["authorize_url"])["scope"].split()) == {"profile", "read", "write"}
    outcome = await callback(stack, await authorize(stack, again["authorize_url"]))
    assert outcome["status"] == "connected" and outcome["connection_id"] == started["connection_id"]
    listed = (await stack.client.get(f"/v1/connections?user_id={user}", headers=bearer(KEY_A))).json()
    (reauthorized,) = listed["connections"]
    assert reauthorized["connection_id"] == connection["connection_id"]
    assert reauthorized["name"] == connection["name"] and reauthorized["status"] == "active"
    assert set(reauthorized["scopes"]) == {"profile", "read", "write"}

    revoked = await stack.client.delete(f"/v1/connections/{started['connection_id']}", headers=bearer(KEY_A))
    assert revoked.status_code == 200, revoked.text
    listed = (await stack.client.get(f"/v1/connections?user_id={user}", headers=bearer(KEY_A))).json()
    assert [c["status"] for c in listed["connections"]] == ["revoked"]
    assert sandbox_requests(stack, "revoke")  # the provider was told
    (reason,) = await stack.vault_rows(
        "SELECT status_reason FROM vault.connections WHERE id = :id", id=started["connection_id"]
    )
    assert reason == ("admin",)


async def test_replayed_forged_and_cross_tenant_states_change_nothing(stack):
    await setup_app(stack)
    started = await start(stack, new_user())
    callback_url = await authorize(stack, started["authorize_url"])
    assert (await callback(stack, callback_url))["status"] == "connected"
    exchanges = code_exchanges(stack)

    replay = await callback(stack, callback_url)
    assert replay["status"] == "error" and replay["error"] == "used_state"

    forged = await stack.client.get("/v1/oauth/callback?code=abc&state=" + "A" * 43)
    assert forged.status_code == 400 and forged.json()["code"] == "unknown_state"
    junk = await stack.client.get("/v1/oauth/callback?code=abc&state=<script>")
    assert junk.status_code == 400

    other = await start(stack, new_user())
    code = query(await authorize(stack, other["authorize_url"]))
    cross = await stack.client.post(
        "/v1/oauth/token",
        headers=bearer(KEY_B),
        json={"code": code["code"], "state": code["state"], "iss": code["iss"]},
    )
    assert cross.status_code == 400 and cross.json()["code"] == "unknown_state"
    assert code_exchanges(stack) == exchanges
    assert (await stack.client.get("/v1/connections", headers=bearer(KEY_B))).json()["connections"] == []
    # The state survived the foreign attempt: its own tenant can still finish the flow.
    own = await stack.client.post(
        "/v1/oauth/token",
        headers=bearer(KEY_A),
        json={"code": code["code"], "state": code["state"], "iss": code["iss"]},
    )
    assert own.status_code == 200, own.text
    assert own.json()["connection_id"] == other["connection_id"]
    assert own.json()["status"] == "active"


async def test_expired_state_is_refused(stack):
    await setup_app(stack)
    started = await start(stack, new_user())
    callback_url = await authorize(stack, started["authorize_url"])
    async with stack.runtime.transaction() as session:
        await session.execute(
            pending_authorizations.update().values(expires_at=func.now() - timedelta(seconds=1))
        )
    outcome = await callback(stack, callback_url)
    assert outcome["status"] == "error" and outcome["error"] == "expired_state"
    assert code_exchanges(stack) == 0
    assert (await stack.client.get("/v1/connections", headers=bearer(KEY_A))).json()["connections"] == []


async def test_provider_denial_comes_back_as_a_status(stack):
    await setup_app(stack)
    started = await start(stack, new_user())
    state = query(started["authorize_url"])["state"]
    # RFC 9207: error responses carry `iss` too.
    iss = quote(f"{stack.sandbox_url}/p/standard", safe="")
    outcome = await callback(
        stack, f"{PUBLIC_URL}/v1/oauth/callback?error=access_denied&state={state}&iss={iss}"
    )
    assert outcome["status"] == "error" and outcome["error"] == "access_denied"


async def test_return_to_outside_the_allow_list_is_refused(stack):
    await setup_app(stack)
    before = await count(stack, pending_authorizations)
    response = await stack.client.post(
        "/v1/connections/initiate",
        headers=bearer(KEY_A),
        json={"user_id": "u1", "provider": "sandbox", "return_to": "https://evil.example/steal"},
    )
    assert response.status_code == 422 and response.json()["code"] == "return_to_not_allowed"
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await count(stack, pending_authorizations) == before


async def test_cross_tenant_access_is_404(stack):
    await setup_app(stack)
    started = await start(stack, new_user())
    await callback(stack, await authorize(stack, started["authorize_url"]))
    path = f"/v1/connections/{started['connection_id']}"
    assert (await stack.client.get(path, headers=bearer(KEY_A))).status_code == 200
    assert (await stack.client.get(path, headers=bearer(KEY_B))).status_code == 404
    assert (await stack.client.delete(path, headers=bearer(KEY_B))).status_code == 404
    assert (await stack.client.get(path, headers=bearer(KEY_A))).json()["status"] == "active"
    assert (await stack.client.get("/v1/provider-apps/sandbox", headers=bearer(KEY_B))).status_code == 404
    assert (await stack.client.delete("/v1/provider-apps/sandbox", headers=bearer(KEY_B))).status_code == 404
    listed = (await stack.client.get("/v1/connections", headers=bearer(KEY_B))).json()
    assert listed["connections"] == []


async def test_connect_session_acts_for_its_user_only(stack):
    await setup_app(stack)
    created = await stack.client.post(
        "/v1/connect-sessions", headers=bearer(KEY_A), json={"user_id": "alice"}
    )
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    assert token.startswith("glk_cs_")
    mine = await start(stack, "alice", key=token)
    assert mine["connection_id"]
    other = await stack.client.post(
        "/v1/connections/initiate",
        headers=bearer(token),
        json={"user_id": "bob", "provider": "sandbox", "return_to": RETURN_TO},
    )
    assert other.status_code == 403
    assert (
        await stack.client.put("/v1/provider-apps/sandbox", headers=bearer(token), json={"client_id": "x"})
    ).status_code == 403
    assert (await stack.client.get("/v1/connections?user_id=bob", headers=bearer(token))).status_code == 403


async def test_audit_record_of_initiation_goes_through_the_outbox(stack, js):
    await setup_app(stack)
    await start(stack, new_user())

    async def relayed():
        info = await js.stream_info("AUDIT")
        return info.state.messages >= 1 and await count(stack, outbox) == 0

    await wait_for_async(relayed)


async def test_unauthenticated_and_bad_input_get_problems(stack):
    response = await stack.client.get("/v1/connections")
    assert response.status_code == 401 and response.json()["code"] == "unauthorized"
    bad = await stack.client.post("/v1/connections/initiate", headers=bearer(KEY_A), content=b"{not json")
    assert bad.status_code == 422 and bad.json()["code"] == "validation_error"
    secret = "sbx_at_SHOULDNEVERECHO12345"
    echoed = await stack.client.put(
        "/v1/provider-apps/sandbox", headers=bearer(KEY_A), json={"client_id": "", "client_secret": secret}
    )
    assert echoed.status_code == 422 and secret not in echoed.text


async def test_redirect_without_iss_is_refused_when_the_provider_sends_it(stack):
    """RFC 9207: the sandbox definition names an issuer, so a redirect stripped of `iss` is a mix-up."""
    await setup_app(stack)
    started = await start(stack, new_user())
    callback_url = await authorize(stack, started["authorize_url"])
    params = query(callback_url)
    assert params["iss"]
    stripped = f"{PUBLIC_URL}/v1/oauth/callback?code={params['code']}&state={params['state']}"
    outcome = await callback(stack, stripped)
    assert outcome["status"] == "error" and outcome["error"] == "issuer_mismatch"
    assert code_exchanges(stack) == 0
    assert (await stack.client.get("/v1/connections", headers=bearer(KEY_A))).json()["connections"] == []
