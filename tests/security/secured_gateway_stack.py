"""A vault and a gateway on a real nats-server that enforces deploy/nats/permissions.yaml.

Each service connects as its own NATS user, as in production; an attacker connects as the gateway's
user (the credentials of the internet-facing service) and talks to the vault directly. The sandbox
plays the provider, and a second server records anything sent where nothing should go.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from grantline.auth_gateway.bootstrap import ensure_tenant_with_key
from grantline.runtime.nats.permissions import PermissionFile

# The gateway tests' support: the sandbox server, the runtimes' settings, the tenants' keys, a flow.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "auth_gateway"))
from gateway_flow import RETURN_TO, authorize, connect, query, setup_app, start, tenant_provider_definition
from gateway_support import (
    CATALOGUE_LOADERS,
    KEY_A,
    KEY_B,
    REDIRECT_URI,
    Stack,
    ThreadedServer,
    bearer,
    cached_load_catalogue,
    provider_servers,
    running_stack,
)

__all__ = [
    "KEY_A",
    "KEY_B",
    "REDIRECT_URI",
    "RETURN_TO",
    "Stack",
    "authorize",
    "bearer",
    "connect",
    "query",
    "setup_app",
    "start",
    "tenant_provider_definition",
]


class RecordingServer:
    """Answers every request with an OAuth token response and records it: the attacker's server."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []

        async def anything(request: Request) -> JSONResponse:
            self.requests.append((request.method, request.url.path))
            return JSONResponse({"access_token": "planted", "token_type": "Bearer", "expires_in": 3600})

        app = Starlette(routes=[Route("/{path:path}", anything, methods=["GET", "POST"])])
        self._server = ThreadedServer(app)
        self.url = self._server.url

    def __enter__(self) -> RecordingServer:
        self._server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.__exit__(*exc)


def identity(permissions: PermissionFile, passwords: dict[str, str], user: str) -> dict[str, Any]:
    """The settings a service connects as `user` with."""
    return {
        "nats_user": user,
        "nats_password": passwords[user],
        "nats_inbox_prefix": permissions.user(user).inbox_prefix,
    }


@pytest.fixture(scope="module")
def _provider_servers():
    with provider_servers() as servers:
        yield servers


@pytest.fixture
def attacker_server():
    with RecordingServer() as server:
        yield server


@pytest.fixture
async def secured_stack(
    secured_nats, declared_jetstream, database_url, tmp_path, _provider_servers, monkeypatch
) -> AsyncIterator[Stack]:
    """Vault and gateway as their own NATS users; tenants A and B with their API keys."""
    _provider_servers.reset()
    for target in CATALOGUE_LOADERS:
        monkeypatch.setattr(target, cached_load_catalogue)
    tenant_a = ensure_tenant_with_key(database_url, name="tenant-a", api_key=KEY_A)
    tenant_b = ensure_tenant_with_key(database_url, name="tenant-b", api_key=KEY_B)
    identities = {
        user: identity(secured_nats.permissions, secured_nats.passwords, user)
        for user in ("vault", "auth-gateway")
    }
    async with running_stack(
        secured_nats.url, database_url, tmp_path, _provider_servers, nats_identities=identities
    ) as stack:
        stack.tenant_a, stack.tenant_b = tenant_a, tenant_b
        yield stack


@pytest.fixture
async def as_gateway_user(secured_nats) -> AsyncIterator[Callable[[], Awaitable[Client]]]:
    """Connect with the gateway's NATS credentials, as whoever stole them would."""
    opened: list[Client] = []

    async def connect() -> Client:
        nc = await nats.connect(
            secured_nats.url,
            user="auth-gateway",
            password=secured_nats.passwords["auth-gateway"],
            inbox_prefix=secured_nats.permissions.user("auth-gateway").inbox_prefix,
            allow_reconnect=False,
            connect_timeout=2,
        )
        opened.append(nc)
        return nc

    yield connect
    for nc in opened:
        await nc.close()
