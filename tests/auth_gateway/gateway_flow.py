"""The browser's and the tenant's side of an OAuth flow through the gateway, for the tests."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from gateway_support import CLIENT_ID, CLIENT_SECRET, KEY_A, REDIRECT_URI, Stack, bearer, played_by_sandbox
from pydantic import SecretStr
from sqlalchemy import func, select

from grantline.contract import vault
from grantline.providers.webhooks import github_signature
from grantline.runtime.nats.secret_wire import request_with_secrets

RETURN_TO = "http://127.0.0.1:3000/done"


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def setup_app(stack: Stack, key: str = KEY_A, provider: str = "sandbox", **extra: Any) -> None:
    response = await stack.client.put(
        f"/v1/provider-apps/{provider}",
        headers=bearer(key),
        json={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, **extra},
    )
    assert response.status_code == 200, response.text
    assert CLIENT_SECRET not in response.text


async def put_named_app(
    stack: Stack,
    name: str,
    client_id: str,
    secret: str,
    key: str = KEY_A,
    provider: str = "sandbox",
    **extra: Any,
) -> dict[str, Any]:
    """A named provider app of the tenant whose key is ``key`` (its client registered with the sandbox);
    ``extra`` adds to the body (a ``webhook_secret``, say)."""
    stack.sandbox.register_client(client_id, secret, redirect_uris=[REDIRECT_URI])
    response = await stack.client.put(
        f"/v1/provider-apps/{provider}/apps/{name}",
        headers=bearer(key),
        json={"client_id": client_id, "client_secret": secret, "scopes": ["read"], **extra},
    )
    assert response.status_code == 200, response.text
    assert secret not in response.text
    return dict(response.json())


async def confirm_connect_link(stack: Stack, url: str) -> None:
    """Open a connect link and confirm it as its user would, by POST: this client then holds the
    connect-page session, and the link is used up."""
    parts = urlsplit(url)
    opened = await stack.client.get(f"{parts.path}?{parts.query}")
    assert opened.status_code in (302, 303) and opened.headers["location"].endswith("/connect/confirm")
    assert (await stack.client.get("/connect")).status_code == 401  # not signed in yet
    confirm = await stack.client.get("/connect/confirm")
    (csrf,) = re.findall(r'name="csrf_token" value="([^"]+)"', confirm.text)
    used = await stack.client.post("/connect/confirm", data={"csrf_token": csrf})
    assert used.status_code in (302, 303), used.text
    # The link is single-use: opening it again leads nowhere.
    again = await stack.client.get(f"{parts.path}?{parts.query}")
    assert "expired" in again.headers.get("location", "")


async def start(stack: Stack, user: str, key: str = KEY_A, **extra: Any) -> dict[str, Any]:
    response = await stack.client.post(
        "/v1/connections/initiate",
        headers=bearer(key),
        json={"user_id": user, "provider": "sandbox", "return_to": RETURN_TO, **extra},
    )
    assert response.status_code == 200, response.text
    return response.json()


async def authorize(stack: Stack, authorize_url: str) -> str:
    """Follow the sandbox's authorize redirect like a browser; return the callback URL it sends us to."""
    # The browser's request carries the code back in its redirect: that is not the gateway's log.
    logging.disable(logging.CRITICAL)
    try:
        async with httpx.AsyncClient() as browser:
            response = await browser.get(played_by_sandbox(authorize_url, stack.sandbox_url))
    finally:
        logging.disable(logging.NOTSET)
    assert response.status_code == 302, response.text
    return response.headers["location"]


async def callback(stack: Stack, callback_url: str) -> dict[str, str]:
    parts = urlsplit(callback_url)
    response = await stack.client.get(f"{parts.path}?{parts.query}")
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith(RETURN_TO)
    return query(location)


async def connect(stack: Stack, user: str, key: str = KEY_A, **extra: Any) -> dict[str, Any]:
    """A full flow (initiate, authorize, callback); returns the initiation reply."""
    started = await start(stack, user, key=key, **extra)
    outcome = await callback(stack, await authorize(stack, started["authorize_url"]))
    assert outcome["status"] == "connected", outcome
    return started


async def connect_through_vault(
    stack: Stack,
    tenant_id: str,
    provider: str,
    profile: str,
    subject: str,
    *,
    provider_app: str | None = None,
    client_id: str = CLIENT_ID,
    connection_id: str | None = None,
) -> vault.ConnectionInfo:
    """A connection to a real catalogue provider, made by the vault with a code from the sandbox playing it.

    Its provider app (the default one, or ``provider_app`` whose client is ``client_id``) must exist.
    The gateway's own flow is tested with the sandbox's entries; this gives the webhook tests real
    `slack`/`github`/`google` connections to revoke.
    """
    scope_param = "user_scope" if profile == "slack" else "scope"
    url = (
        f"{stack.sandbox_url}/p/{profile}/authorize?response_type=code&client_id={client_id}"
        f"&redirect_uri={REDIRECT_URI}&{scope_param}=read&state=s&sandbox_user={subject}"
    )
    code = query(await authorize(stack, url))["code"]
    reply = await request_with_secrets(
        stack.vault.nats,
        vault.SUBJECT_EXCHANGE,
        vault.ExchangeRequest(
            tenant_id=tenant_id,
            connection_id=connection_id or f"conn_{subject}{'_' + provider_app if provider_app else ''}",
            owner=f"user:{subject}",
            provider=provider,
            provider_app=provider_app,
            code=SecretStr(code),
            redirect_uri=REDIRECT_URI,
            requested_scopes=["read"],
        ),
        vault.ConnectionInfo,
        timeout=10,
    )
    assert isinstance(reply, vault.ConnectionInfo), reply
    return reply


async def count(stack: Stack, table: Any) -> int:
    async with stack.runtime.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(table))).scalar_one())


def sandbox_requests(stack: Stack, endpoint: str) -> list[Any]:
    with stack.sandbox.lock:
        return [r for r in stack.sandbox.requests if r.endpoint == endpoint]


async def stream_events(stack: Stack, stream: str = "CONNECTIONS") -> list[dict[str, Any]]:
    """Every event in a JetStream stream, decoded."""
    js = stack.vault.nats.jetstream()
    info = await js.stream_info(stream)
    events = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        message = await js.get_msg(stream, seq)
        events.append(json.loads(message.data or b"{}"))
    return events


def tenant_provider_definition(sandbox_url: str, provider: str, **extra: Any) -> dict[str, Any]:
    """A tenant's own OAuth provider (`POST /v1/providers`), played by the sandbox's standard profile."""
    base = f"{sandbox_url}/p/standard"
    return {
        "id": provider,
        "name": "Acme (tenant-defined)",
        "category": "testing",
        "auth": "oauth2",
        "description": "The tenant's own OAuth server.",
        "oauth": {
            "authorize_url": f"{base}/authorize",
            "token_url": f"{base}/token",
            "userinfo_url": f"{base}/userinfo",
            "issuer": base,
            "pkce": "supported",
            "scopes": {"default": ["profile", "read"], "available": {"profile": "Profile", "read": "Read"}},
        },
        "account": {"source": "userinfo", "id_path": "sub", "name_path": "email"},
        **extra,
    }


async def connect_page(stack: Stack, user: str, key: str = KEY_A) -> str:
    """The user's connect page, entered through a connect link and its confirm POST."""
    created = await stack.client.post("/v1/connect-sessions", headers=bearer(key), json={"user_id": user})
    link = urlsplit(created.json()["connect_url"])
    assert (await stack.client.get(f"{link.path}?{link.query}")).status_code == 303
    confirm = await stack.client.get("/connect/confirm")
    marker = 'name="csrf_token" value="'
    start = confirm.text.index(marker) + len(marker)
    token = confirm.text[start : confirm.text.index('"', start)]
    confirmed = await stack.client.post("/connect/confirm", data={"csrf_token": token})
    assert confirmed.status_code == 303, confirmed.text
    home = await stack.client.get("/connect")
    assert home.status_code == 200, home.text
    return home.text


async def status_of(stack: Stack, connection_id: str, key: str = KEY_A) -> str:
    """A connection's status, as its tenant's API shows it."""
    response = await stack.client.get(f"/v1/connections/{connection_id}", headers=bearer(key))
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


def github_revocation_poster(stack: Stack, connection: vault.ConnectionInfo) -> Callable[[str, str], Any]:
    """`post(path, secret)`: GitHub's authorization-revoked event for the connection's account, signed
    with ``secret``, under a fresh delivery id."""
    body = json.dumps(
        {"action": "revoked", "sender": {"login": "octocat", "id": int(connection.account or 0)}}
    ).encode()

    def post(path: str, secret: str) -> Any:
        headers = {
            "content-type": "application/json",
            "x-github-event": "github_app_authorization",
            "x-github-delivery": str(uuid.uuid4()),
            "x-hub-signature-256": github_signature(secret, body),
        }
        return stack.client.post(path, content=body, headers=headers)

    return post
