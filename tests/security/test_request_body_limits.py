# ruff: noqa: F811 - the fixtures are imported from secured_gateway_stack, then requested by name
"""Request bodies are limited per route family on the raw stream, before anything is parsed: an
oversized body (declared or streamed in chunks) gets 413 problem details, the app never runs and
the gateway stops reading at the first chunk over the limit."""

import httpx
import pytest
from secured_gateway_stack import KEY_A, _provider_servers, bearer, secured_stack  # noqa: F401 - fixtures

from grantline.auth_gateway.entrypoints.http.body_limits import BodyLimits, RequestBodyLimitMiddleware
from grantline.auth_gateway.settings import GatewaySettings

CHUNK = b"x" * 65_536
DEFAULTS = GatewaySettings.model_fields


@pytest.fixture
def stack(secured_stack):
    """The gateway and vault as their own NATS users (the real permission file)."""
    return secured_stack


class ChunkSource:
    """A request body sent in chunks without a Content-Length; counts what the server pulled."""

    def __init__(self, total_bytes: int) -> None:
        self.chunks = -(-total_bytes // len(CHUNK))
        self.pulled = 0

    async def __aiter__(self):
        for _ in range(self.chunks):
            self.pulled += 1
            yield CHUNK


class RecordingApp:
    """A stand-in for the gateway behind the middleware: records whether it ran and what it read."""

    def __init__(self) -> None:
        self.calls = 0
        self.body = b""

    async def __call__(self, scope, receive, send):
        self.calls += 1
        while True:
            message = await receive()
            self.body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


LIMITS = BodyLimits(api=200_000, ui_form=70_000, webhook=300_000)


async def post_through_limits(app, path: str, source: ChunkSource, **headers: str) -> httpx.Response:
    transport = httpx.ASGITransport(app=RequestBodyLimitMiddleware(app, LIMITS))
    async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
        return await client.post(path, content=source, headers=headers)


@pytest.mark.parametrize(
    ("path", "limit", "what"),
    [
        ("/v1/connections/initiate", LIMITS.api, "a request body"),
        ("/admin/sign-in", LIMITS.ui_form, "a form"),
        ("/connect/authorize/sandbox", LIMITS.ui_form, "a form"),
        ("/v1/webhooks/github", LIMITS.webhook, "a webhook body"),
    ],
)
async def test_a_streamed_body_over_its_limit_never_reaches_the_app(path, limit, what):
    app = RecordingApp()
    source = ChunkSource(50 * len(CHUNK))
    response = await post_through_limits(app, path, source)
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "payload_too_large"
    assert response.json()["detail"] == f"{what} is at most {limit} bytes"
    assert app.calls == 0
    assert source.pulled == limit // len(CHUNK) + 1 < source.chunks


async def test_a_declared_length_over_the_limit_is_refused_before_reading():
    app = RecordingApp()
    source = ChunkSource(4 * len(CHUNK))
    response = await post_through_limits(
        app, "/v1/providers", source, **{"Content-Length": str(4 * len(CHUNK))}
    )
    assert response.status_code == 413
    assert app.calls == 0 and source.pulled == 0


async def test_a_body_within_its_limit_reaches_the_app_whole():
    app = RecordingApp()
    source = ChunkSource(3 * len(CHUNK))
    response = await post_through_limits(app, "/v1/webhooks/github", source)
    assert response.status_code == 204
    assert app.calls == 1 and app.body == CHUNK * 3


def test_each_route_family_has_its_own_setting():
    assert DEFAULTS["api_max_body_bytes"].default == 512_000
    assert DEFAULTS["ui_form_max_body_bytes"].default == 64_000
    assert DEFAULTS["webhook_max_body_bytes"].default == 1_000_000


async def test_the_gateway_refuses_an_unauthenticated_oversized_post_unread(stack):
    source = ChunkSource(55 * 1_000_000)
    response = await stack.client.post("/v1/connections/initiate", content=source)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert source.pulled <= 512_000 // len(CHUNK) + 1


async def test_the_gateway_refuses_an_oversized_sign_in_form(stack):
    form = {"api_key": KEY_A, "padding": "x" * 70_000}
    response = await stack.client.post("/admin/sign-in", data=form)
    assert response.status_code == 413
    assert KEY_A not in response.text


async def test_the_gateway_still_serves_bodies_within_the_limit(stack):
    response = await stack.client.post(
        "/v1/connect-sessions", headers=bearer(KEY_A), json={"user_id": "alice"}
    )
    assert response.status_code == 201, response.text
