# ruff: noqa: F811 - the fixtures are imported from secured_gateway_stack, then requested by name
"""Credentials never ride in URLs: API keys and connect-session tokens go in the Authorization
header; the one exception is the connect page's first request (`GET /connect?connect_session=`),
which exchanges a connect-session token (never an API key) for a cookie and redirects."""

import pytest
from secured_gateway_stack import KEY_A, _provider_servers, bearer, secured_stack  # noqa: F401 - fixtures

from grantline.auth_gateway.entrypoints.ui.browser_sessions import CONNECT_COOKIE


@pytest.fixture
def stack(secured_stack):
    """The gateway and vault as their own NATS users (the real permission file)."""
    return secured_stack


async def _connect_session(stack, user: str = "alice") -> dict:
    created = await stack.client.post("/v1/connect-sessions", headers=bearer(KEY_A), json={"user_id": user})
    assert created.status_code == 201, created.text
    return created.json()


@pytest.mark.parametrize("param", ["connect_session", "session", "api_key", "access_token"])
async def test_an_api_key_in_the_query_is_refused_on_the_api(stack, param):
    response = await stack.client.get("/v1/connections", params={param: KEY_A})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "Authorization header" in response.json()["detail"]
    assert KEY_A not in response.text


async def test_a_credential_in_the_query_is_refused_even_beside_a_valid_header(stack):
    response = await stack.client.get(
        "/v1/connections", params={"connect_session": KEY_A}, headers=bearer(KEY_A)
    )
    assert response.status_code == 401


async def test_a_connect_session_token_in_the_query_is_refused_on_the_api(stack):
    token = (await _connect_session(stack))["token"]
    response = await stack.client.get("/v1/connections", params={"connect_session": token})
    assert response.status_code == 401
    assert token not in response.text


async def test_credentials_in_the_authorization_header_work(stack):
    assert (await stack.client.get("/v1/connections", headers=bearer(KEY_A))).status_code == 200
    token = (await _connect_session(stack))["token"]
    assert (await stack.client.get("/v1/connections", headers=bearer(token))).status_code == 200


async def test_the_connect_page_exchanges_a_connect_session_token_on_its_first_request(stack):
    issued = await _connect_session(stack)
    assert "/connect?connect_session=" in issued["connect_url"]
    first = await stack.client.get(issued["connect_url"])
    # The link is taken once, then confirmed by a POST (the login-CSRF fix): no session yet.
    assert first.status_code == 303 and first.headers["location"] == "/connect/confirm"
    assert CONNECT_COOKIE not in first.cookies and "grantline_connect_link" in first.cookies


@pytest.mark.parametrize("param", ["connect_session", "session"])
async def test_the_connect_page_does_not_take_an_api_key_from_the_query(stack, param):
    response = await stack.client.get("/connect", params={param: KEY_A})
    assert response.status_code == 303 and response.headers["location"] == "/connect?expired=1"
    assert CONNECT_COOKIE not in response.cookies


async def test_other_connect_pages_do_not_take_a_token_from_the_query(stack):
    token = (await _connect_session(stack))["token"]
    stack.client.cookies.clear()
    response = await stack.client.get("/connect/authorize/sandbox", params={"session": token})
    assert response.status_code == 401 and "expired" in response.text
    assert CONNECT_COOKIE not in response.cookies
