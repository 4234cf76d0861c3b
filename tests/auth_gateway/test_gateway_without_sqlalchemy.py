"""The gateway serves its requests on psycopg alone: SQLAlchemy (about 20 MB at rest) never loads,
not at start and not on the way through authentication, rate limits, connect sessions and pages."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from gateway_support import KEY_A

from grantline.auth_gateway.bootstrap import ensure_tenant_with_key

# A fresh interpreter: the test session itself has SQLAlchemy loaded (the tests' own queries use it).
_SERVING = textwrap.dedent(
    """
    import asyncio, json, sys

    import httpx

    from grantline.auth_gateway.app import create_runtime
    from grantline.auth_gateway.settings import GatewaySettings

    async def main(nats_url: str, database_url: str, key: str) -> None:
        settings = GatewaySettings(
            nats_url=nats_url,
            database_url=database_url,
            environment="test",
            public_url="http://gw.test",
            bus_timeout_seconds=0.5,
        )
        runtime = create_runtime(settings)
        await runtime.start()
        statuses = {}
        try:
            app = runtime.http_application()
            transport = httpx.ASGITransport(app=app, client=("198.51.100.9", 40000))
            async with httpx.AsyncClient(transport=transport, base_url="http://gw.test") as client:
                tenant = {"Authorization": f"Bearer {key}"}
                minted = await client.post("/v1/connect-sessions", headers=tenant, json={"user_id": "u1"})
                statuses["mint"] = minted.status_code
                token = minted.json()["token"]
                user = {"Authorization": f"Bearer {token}"}
                statuses["as_user"] = (await client.get("/v1/connections/c-1", headers=user)).status_code
                guess = {"Authorization": "Bearer glk_guess_0123456789abcdefghij"}
                statuses["guess"] = (await client.get("/v1/connections/c-1", headers=guess)).status_code
                callback = await client.get("/v1/oauth/callback", params={"state": "s" * 43})
                statuses["callback"] = callback.status_code
                opened = await client.get("/connect", params={"connect_session": token})
                statuses["open_link"] = opened.status_code
                signed_in = await client.post("/admin/sign-in", data={"api_key": key})
                statuses["sign_in"] = signed_in.status_code
                statuses["admin_page"] = (await client.get("/admin/webhooks")).status_code
        finally:
            await runtime.stop()
        print(json.dumps({"statuses": statuses, "sqlalchemy": "sqlalchemy" in sys.modules}))

    asyncio.run(main(*sys.argv[1:]))
    """
)


def test_the_gateway_serves_requests_without_loading_sqlalchemy(nats_url: str, database_url: str) -> None:
    ensure_tenant_with_key(database_url, name="tenant-a", api_key=KEY_A)
    result = subprocess.run(
        [sys.executable, "-c", _SERVING, nats_url, database_url, KEY_A],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    statuses = probe["statuses"]
    # The vault is not running: past authentication, what asks it answers 503 (the admin page may
    # show its own error page instead).
    assert statuses.pop("admin_page") in (200, 503), probe
    assert statuses == {
        "mint": 201,
        "as_user": 503,
        "guess": 401,
        "callback": 400,
        "open_link": 303,
        "sign_in": 303,
    }, probe
    assert probe["sqlalchemy"] is False
