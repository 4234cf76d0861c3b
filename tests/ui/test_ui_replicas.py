"""Browser sessions across gateway replicas: one shared key, and production refuses to run without it."""

import secrets

import httpx
import pytest
from fixtures.start_up import run_role
from ui_support import API_KEY, ui_stack

from grantline.auth_gateway.app import create_runtime as create_gateway
from grantline.auth_gateway.entrypoints.ui.browser_sessions import MissingUiSessionSecret
from grantline.auth_gateway.settings import GatewaySettings


async def test_two_gateway_replicas_share_one_admin_session(nats_url, database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("GRANTLINE_UI_SESSION_SECRET", secrets.token_urlsafe(48))
    async with ui_stack(nats_url, database_url, tmp_path) as stack:
        # The second replica: same configuration, its own process state.
        replica = create_gateway(stack.gateway.settings)  # type: ignore[arg-type]
        await replica.start()
        try:
            async with httpx.AsyncClient(base_url=stack.url) as first:
                signed_in = await first.post("/admin/sign-in", data={"api_key": API_KEY})
                assert signed_in.status_code == 303
                cookies = first.cookies
            transport = httpx.ASGITransport(app=replica.http_application())
            async with httpx.AsyncClient(transport=transport, base_url=stack.url, cookies=cookies) as second:
                page = await second.get("/admin/connections")
                assert page.status_code == 200 and "Start a connection" in page.text
        finally:
            await replica.stop()


def test_production_without_a_shared_key_refuses_to_start(monkeypatch):
    monkeypatch.delenv("GRANTLINE_UI_SESSION_SECRET", raising=False)
    settings = GatewaySettings(nats_url="tls://nats:4222", environment="production")  # type: ignore[call-arg]
    with pytest.raises(MissingUiSessionSecret, match="GRANTLINE_UI_SESSION_SECRET must be set in production"):
        create_gateway(settings)
    monkeypatch.setenv("GRANTLINE_UI_SESSION_SECRET", secrets.token_urlsafe(48))
    create_gateway(settings)  # with the key it builds


def test_grantline_run_auth_gateway_says_so_in_one_sentence():
    # Production by default; plaintext allowed so that the NATS check does not answer first.
    result = run_role(
        "auth-gateway", {"GRANTLINE_NATS_URL": "nats://127.0.0.1:9", "GRANTLINE_NATS_ALLOW_PLAINTEXT": "true"}
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: GRANTLINE_UI_SESSION_SECRET must be set in production")
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
