"""The browser's and the tenant's side of an OAuth flow through the gateway, for the tests."""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from gateway_support import CLIENT_ID, CLIENT_SECRET, KEY_A, REDIRECT_URI, Stack, bearer, played_by_sandbox
from pydantic import SecretStr
from sqlalchemy import func, select

from grantline.common.contract import vault
from grantline.common.nats.secret_wire import request_with_secrets

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
    stack: Stack, tenant_id: str, provider: str, profile: str, subject: str
) -> vault.ConnectionInfo:
    """A connection to a real catalogue provider, made by the vault with a code from the sandbox playing it.

    Its provider app must exist. The gateway's own flow is tested with the sandbox's entries; this
    gives the webhook tests real `slack`/`github`/`google` connections to revoke.
    """
    scope_param = "user_scope" if profile == "slack" else "scope"
    url = (
        f"{stack.sandbox_url}/p/{profile}/authorize?response_type=code&client_id={CLIENT_ID}"
        f"&redirect_uri={REDIRECT_URI}&{scope_param}=read&state=s&sandbox_user={subject}"
    )
    code = query(await authorize(stack, url))["code"]
    reply = await request_with_secrets(
        stack.vault.nats,
        vault.SUBJECT_EXCHANGE,
        vault.ExchangeRequest(
            tenant_id=tenant_id,
            connection_id=f"conn_{subject}",
            owner=f"user:{subject}",
            provider=provider,
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
