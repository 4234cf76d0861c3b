"""Test support for the gateway: the sandbox provider, the real vault, satisfaction and audit runtimes.

Everything runs in-process against the test NATS and Postgres. The sandbox plays every provider:
its own `sandbox*` catalogue entries directly, and `slack`, `github` and `google` through
`SandboxPlaysProviders`, a transport the vault's provider client uses that sends requests
for those providers' real hosts to the sandbox profile imitating them (nothing leaves the machine).
"""

from __future__ import annotations

import base64
import functools
import json
import secrets
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import uvicorn
from fixtures.infra import free_port
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from grantline.audit.app import create_runtime as create_audit_runtime
from grantline.audit.settings import AuditSettings
from grantline.auth_gateway.app import create_runtime as create_gateway_runtime
from grantline.auth_gateway.settings import GatewaySettings
from grantline.providers.catalogue import Catalogue, load_catalogue
from grantline.runtime.service_runtime import ServiceRuntime
from grantline.sandbox import SandboxState, create_sandbox_app
from grantline.satisfaction.app import create_runtime as create_satisfaction_runtime
from grantline.satisfaction.settings import SatisfactionSettings
from grantline.vault.adapters.provider_client import ProviderClient
from grantline.vault.adapters.provider_http import ProviderResponse, ProviderTransport, transport_for
from grantline.vault.app import create_runtime as create_vault_runtime
from grantline.vault.settings import VaultSettings

PUBLIC_URL = "http://gateway.test"
REDIRECT_URI = f"{PUBLIC_URL}/v1/oauth/callback"
CLIENT_ID = "gw-client"
CLIENT_SECRET = "sbx_secret_gateway_tests_0123456789"
# Tenant API keys of the two tenants every stack has.
KEY_A = "glk_tenant_a_key_0123456789abcdefghij"
KEY_B = "glk_tenant_b_key_0123456789abcdefghij"

# (real host, real path) -> sandbox path of the profile imitating that provider.
PLAYED_BY_SANDBOX: dict[tuple[str, str], str] = {
    ("slack.com", "/oauth/v2/authorize"): "/p/slack/authorize",
    ("slack.com", "/api/oauth.v2.access"): "/p/slack/token",
    ("slack.com", "/api/auth.revoke"): "/p/slack/revoke",
    ("github.com", "/login/oauth/authorize"): "/p/github/authorize",
    ("github.com", "/login/oauth/access_token"): "/p/github/token",
    ("api.github.com", "/user"): "/p/github/userinfo",
    ("accounts.google.com", "/o/oauth2/v2/auth"): "/p/google/authorize",
    ("oauth2.googleapis.com", "/token"): "/p/google/token",
    ("oauth2.googleapis.com", "/revoke"): "/p/google/revoke",
    ("openidconnect.googleapis.com", "/v1/userinfo"): "/p/google/userinfo",
    ("auth.atlassian.com", "/authorize"): "/p/atlassian/authorize",
    ("auth.atlassian.com", "/oauth/token"): "/p/atlassian/token",
    ("api.atlassian.com", "/me"): "/p/atlassian/userinfo",
    ("api.atlassian.com", "/oauth/token/accessible-resources"): "/p/atlassian/accessible-resources",
}


def played_by_sandbox(url: str, sandbox_url: str) -> str:
    """The sandbox URL standing in for a real provider URL (other URLs unchanged)."""
    parts = urlsplit(url)
    path = PLAYED_BY_SANDBOX.get((parts.hostname or "", parts.path))
    if path is None and parts.hostname == "api.github.com" and parts.path.startswith("/applications/"):
        path = "/p/github/revoke"  # GitHub's grant deletion; the sandbox answers what it can
    if path is None:
        return url
    sandbox = urlsplit(sandbox_url)
    return urlunsplit((sandbox.scheme, sandbox.netloc, path, parts.query, ""))


class SandboxPlaysProviders:
    """Sends the vault's requests for the real Slack, GitHub and Google endpoints to the sandbox."""

    def __init__(self, sandbox_url: str, inner: ProviderTransport) -> None:
        self._sandbox_url = sandbox_url
        self._inner = inner

    async def send(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None
    ) -> ProviderResponse:
        return await self._inner.send(
            method, played_by_sandbox(url, self._sandbox_url), headers=headers, body=body
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


class ThreadedServer:
    """An ASGI app served by uvicorn on a free loopback port in a thread (lives across tests)."""

    def __init__(self, app: Any) -> None:
        self.url = f"http://127.0.0.1:{free_port()}"
        port = int(self.url.rsplit(":", 1)[1])
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> ThreadedServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


@dataclass
class ProviderServers:
    """The sandbox provider and a JWKS endpoint (Google RISC signing keys the tests control)."""

    sandbox: SandboxState
    sandbox_url: str
    jwks: dict[str, Any]
    jwks_url: str

    def reset(self) -> None:
        self.sandbox.reset(keep_clients=False)
        self.sandbox.canary = None
        self.sandbox.register_client(CLIENT_ID, CLIENT_SECRET, redirect_uris=[REDIRECT_URI])
        self.jwks.clear()
        self.jwks["keys"] = []


@contextmanager
def provider_servers() -> Iterator[ProviderServers]:
    """Start the sandbox and the JWKS server for a whole session."""
    state = SandboxState()
    document: dict[str, Any] = {"keys": []}

    async def jwks(_request: Any) -> JSONResponse:
        return JSONResponse(document)

    with (
        ThreadedServer(create_sandbox_app(state)) as sandbox,
        ThreadedServer(Starlette(routes=[Route("/jwks", jwks)])) as jwks_server,
    ):
        servers = ProviderServers(state, sandbox.url, document, f"{jwks_server.url}/jwks")
        servers.reset()
        yield servers


@functools.cache
def _catalogue(extra_dirs: tuple[str, ...], sandbox_url: str | None) -> Catalogue:
    return load_catalogue(extra_dirs, sandbox_url=sandbox_url)


def cached_load_catalogue(extra_dirs: Iterable[Any] = (), sandbox_url: str | None = None) -> Catalogue:
    """`load_catalogue`, parsed once per session: the catalogue is immutable, and parsing it per
    runtime costs most of a test's set-up."""
    return _catalogue(tuple(str(d) for d in extra_dirs or ()), sandbox_url)


# Where each service looks `load_catalogue` up (patched by the conftest with `cached_load_catalogue`).
CATALOGUE_LOADERS = (
    "grantline.vault.app.load_catalogue",
    "grantline.auth_gateway.app.load_catalogue",
    "grantline.satisfaction.adapters.catalogue_rows.load_catalogue",
)


def write_keyring(path: Path) -> Path:
    """A one-key master keyring file for the vault."""
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    path.write_text(json.dumps({"active": "mk-gw-1", "keys": {"mk-gw-1": key}}))
    return path


def common_settings(nats_url: str, database_url: str) -> dict[str, Any]:
    return {
        "nats_url": nats_url,
        "database_url": database_url,
        "environment": "test",
        "database_pool_size": 4,
    }


def vault_runtime(
    nats_url: str,
    database_url: str,
    sandbox_url: str,
    keyring: Path,
    jwks_url: str,
    nats_identity: Mapping[str, Any] | None = None,
) -> ServiceRuntime:
    """The real vault, its provider calls to Slack/GitHub/Google played by the sandbox."""
    settings = VaultSettings(
        **common_settings(nats_url, database_url),
        **(nats_identity or {}),
        allow_private_provider_urls=True,
        sandbox_url=sandbox_url,
        master_keyring_file=keyring,
        risc_jwks_url=jwks_url,
        provider_max_attempts=2,
        provider_retry_base_seconds=0.01,
        revoke_timeout_seconds=2,
        audit_flush_interval_seconds=0.05,
        request_workers=4,
    )
    transport = SandboxPlaysProviders(sandbox_url, transport_for(settings))
    return create_vault_runtime(settings, providers=ProviderClient(settings, transport=transport))


def gateway_runtime(
    nats_url: str, database_url: str, sandbox_url: str, nats_identity: Mapping[str, Any] | None = None
) -> ServiceRuntime:
    settings = GatewaySettings(
        **common_settings(nats_url, database_url),
        **(nats_identity or {}),
        sandbox_url=sandbox_url,
        public_url=PUBLIC_URL,
        allow_private_provider_urls=True,
        bus_timeout_seconds=5,
    )
    return create_gateway_runtime(settings)


def satisfaction_runtime(nats_url: str, database_url: str, sandbox_url: str) -> ServiceRuntime:
    settings = SatisfactionSettings(
        **common_settings(nats_url, database_url),
        sandbox_url=sandbox_url,
        run_workers=2,
        check_workers=2,
    )
    return create_satisfaction_runtime(settings)


def audit_runtime(nats_url: str, database_url: str) -> ServiceRuntime:
    settings = AuditSettings(
        **common_settings(nats_url, database_url),
        audit_retention_interval_seconds=0,
    )
    return create_audit_runtime(settings)


def notifier_runtime(nats_url: str, database_url: str) -> ServiceRuntime:
    """The notifier for /v1/webhook-endpoints (endpoints on loopback allowed: the receivers are local)."""
    from grantline.notifier.app import create_runtime as create_notifier_runtime
    from grantline.notifier.settings import NotifierSettings

    settings = NotifierSettings(
        **common_settings(nats_url, database_url),
        allow_private_webhook_urls=True,
        webhook_retry_scale=0.001,
        webhook_poll_seconds=0.02,
    )
    return create_notifier_runtime(settings)


def runner_auth_runtime(nats_url: str, database_url: str) -> ServiceRuntime:
    """runner-auth for /v1/runners (on this plain NATS no callout is configured, so no kicks)."""
    from grantline.runner_auth.adapters.nats_jwt import new_account_seed
    from grantline.runner_auth.app import create_runtime as create_runner_auth_runtime
    from grantline.runner_auth.settings import RunnerAuthSettings

    settings = RunnerAuthSettings(
        **common_settings(nats_url, database_url),
        runner_auth_issuer_seed=new_account_seed(),
        runner_auth_sweep_interval_seconds=0,
    )
    return create_runner_auth_runtime(settings)


@asynccontextmanager
async def started(runtime: ServiceRuntime) -> AsyncIterator[ServiceRuntime]:
    await runtime.start()
    try:
        yield runtime
    finally:
        await runtime.stop()


class Stack:
    """The running services of one test and the handles tests use."""

    client: httpx.AsyncClient
    runtime: ServiceRuntime  # the gateway
    vault: ServiceRuntime
    sandbox: SandboxState
    sandbox_url: str
    jwks: dict[str, Any]
    tenant_a: str
    tenant_b: str

    async def vault_rows(self, statement: str, **params: Any) -> list[Any]:
        """Rows of a read-only SQL statement, through the vault's engine (tests only)."""
        from sqlalchemy import text

        async with self.vault.sessions() as session:
            return list((await session.execute(text(statement), params)).all())


@asynccontextmanager
async def running_stack(
    nats_url: str,
    database_url: str,
    keyring_dir: Path,
    servers: ProviderServers,
    *,
    satisfaction_and_audit: bool = False,
    nats_identities: Mapping[str, Mapping[str, Any]] | None = None,
) -> AsyncIterator[Stack]:
    """Vault, gateway (and optionally satisfaction, audit, runner-auth and the notifier), all started.

    `nats_identities` maps "vault" and "auth-gateway" to the NATS user settings each connects with
    (`nats_user`, `nats_password`, `nats_inbox_prefix`) when the server enforces the permission file.
    """
    identities = nats_identities or {}
    stack = Stack()
    stack.sandbox, stack.sandbox_url, stack.jwks = servers.sandbox, servers.sandbox_url, servers.jwks
    async with AsyncExitStack() as exits:
        keyring = write_keyring(keyring_dir / "master-keyring.json")
        stack.vault = await exits.enter_async_context(
            started(
                vault_runtime(
                    nats_url,
                    database_url,
                    stack.sandbox_url,
                    keyring,
                    servers.jwks_url,
                    identities.get("vault"),
                )
            )
        )
        if satisfaction_and_audit:
            await exits.enter_async_context(
                started(satisfaction_runtime(nats_url, database_url, stack.sandbox_url))
            )
            await exits.enter_async_context(started(audit_runtime(nats_url, database_url)))
            await exits.enter_async_context(started(runner_auth_runtime(nats_url, database_url)))
            await exits.enter_async_context(started(notifier_runtime(nats_url, database_url)))
        stack.runtime = await exits.enter_async_context(
            started(
                gateway_runtime(nats_url, database_url, stack.sandbox_url, identities.get("auth-gateway"))
            )
        )
        transport = httpx.ASGITransport(app=stack.runtime.http_application())
        stack.client = await exits.enter_async_context(
            httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL)
        )
        yield stack


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def new_user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"
