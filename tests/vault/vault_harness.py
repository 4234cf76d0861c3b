"""Helpers for vault integration tests: a sandbox served on a real port and a vault driven over NATS."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import secrets
import threading
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx
import uvicorn
from fixtures.run_grants import mint_grant
from pydantic import BaseModel, SecretStr

from grantline.contract import vault, vault_admin
from grantline.contract.audit import AuditAction, AuditRecord
from grantline.contract.envelope import tenant_scoped
from grantline.contract.errors import ErrorReply
from grantline.contract.registry import decode_event
from grantline.providers.authorize import build_authorize_url, code_challenge_s256, new_code_verifier
from grantline.runtime.nats.secret_wire import request_with_secrets
from grantline.runtime.service_runtime import ServiceRuntime
from grantline.sandbox import SandboxState, create_sandbox_app
from grantline.vault.app import create_runtime
from grantline.vault.settings import VaultSettings

CLIENT_ID = "vault-tests"
CLIENT_SECRET = "sbx_secret_vault_tests_0123456789"
REDIRECT_URI = "https://grantline.test/v1/oauth/callback"
TENANT = "tenant-a"

ReplyT = TypeVar("ReplyT", bound=BaseModel)


class SandboxServer:
    """The sandbox provider on a free loopback port, served by uvicorn in a thread."""

    def __init__(self, port: int) -> None:
        self.state = SandboxState()
        self.url = f"http://127.0.0.1:{port}"
        config = uvicorn.Config(
            create_sandbox_app(self.state), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("sandbox did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)

    def reset(self) -> None:
        self.state.reset(keep_clients=False)
        self.state.canary = None
        self.state.register_client(CLIENT_ID, CLIENT_SECRET, redirect_uris=[REDIRECT_URI])

    def refresh_grants(self, profile: str) -> int:
        with self.state.lock:
            return self.state.grant_counts[f"{profile}:refresh_token"]

    def requests_to(self, endpoint: str, profile: str | None = None) -> list[Any]:
        with self.state.lock:
            return [r for r in self.state.requests if r.endpoint == endpoint and profile in (None, r.profile)]


def write_keyring(path: Path, key_id: str = "mk-test-1") -> Path:
    """A one-key master keyring file."""
    document = {"active": key_id, "keys": {key_id: base64.b64encode(secrets.token_bytes(32)).decode()}}
    path.write_text(json.dumps(document))
    return path


def vault_settings(
    nats_url: str, database_url: str, sandbox_url: str, keyring_file: Path, **overrides: object
) -> VaultSettings:
    """Settings of a vault under test: the sandbox on loopback, quick retries and audit flushes."""
    values: dict[str, object] = {
        "nats_url": nats_url,
        "database_url": database_url,
        "environment": "test",
        "database_pool_size": 5,
        "allow_private_provider_urls": True,
        "sandbox_url": sandbox_url,
        "master_keyring_file": keyring_file,
        "provider_max_attempts": 2,
        "provider_retry_base_seconds": 0.01,
        "audit_flush_interval_seconds": 0.05,
        **overrides,
    }
    return VaultSettings(**values)  # type: ignore[arg-type]


PROFILE_OF = {
    "sandbox": "standard",
    "sandbox_google": "google",
    "sandbox_rotating": "rotating",
    "sandbox_rotating_grace": "rotating_grace",
    "sandbox_slack": "slack",
    "sandbox_github": "github",
    "sandbox_pkce": "pkce",
}


@dataclass
class VaultHarness:
    """Talks to a running vault the way the gateway and app runners do."""

    runtime: ServiceRuntime
    sandbox: SandboxServer

    @property
    def ctx(self) -> Any:
        return self.runtime.vault  # type: ignore[attr-defined]

    async def call(self, subject: str, message: BaseModel, reply_model: type[ReplyT]) -> ReplyT | ErrorReply:
        return await request_with_secrets(self.runtime.nats, subject, message, reply_model, timeout=15)

    async def put_app(
        self, provider: str, *, tenant: str = TENANT, fallback: bool = False, **extra: Any
    ) -> Any:
        reply = await self.call(
            vault_admin.SUBJECT_PROVIDER_APP_PUT,
            vault_admin.PutProviderAppRequest(
                tenant_id=tenant,
                provider=provider,
                client_id=CLIENT_ID,
                client_secret=SecretStr(CLIENT_SECRET),
                allow_workspace_fallback=fallback,
                **extra,
            ),
            vault_admin.ProviderAppInfo,
        )
        assert not isinstance(reply, ErrorReply), reply
        return reply

    async def authorization_code(
        self, provider: str, *, scopes: list[str] | None = None, subject: str | None = None
    ) -> tuple[str, str | None]:
        definition = self.ctx.catalogue.get(provider)
        verifier = new_code_verifier() if definition.oauth.pkce != "none" else None
        url = build_authorize_url(
            definition,
            client_id=CLIENT_ID,
            redirect_uri=REDIRECT_URI,
            scopes=scopes,
            state="st",
            code_challenge=code_challenge_s256(verifier) if verifier else None,
        )
        if subject:
            url += f"&sandbox_user={subject}"
        # The browser's side of the flow is not the vault's: keep its redirect (with the code) out of
        # the logs the canary test inspects.
        logging.disable(logging.CRITICAL)
        try:
            async with httpx.AsyncClient() as http:
                response = await http.get(url)
        finally:
            logging.disable(logging.NOTSET)
        assert response.status_code == 302, response.text
        query = parse_qs(urlsplit(response.headers["location"]).query)
        return query["code"][0], verifier

    async def connect(
        self,
        provider: str = "sandbox",
        *,
        user: str = "alice",
        tenant: str = TENANT,
        owner: str | None = None,
        scopes: list[str] | None = None,
        subject: str | None = None,
        connection_id: str | None = None,
    ) -> vault.ConnectionInfo:
        code, verifier = await self.authorization_code(provider, scopes=scopes, subject=subject or user)
        reply = await self.call(
            vault.SUBJECT_EXCHANGE,
            vault.ExchangeRequest(
                tenant_id=tenant,
                connection_id=connection_id or f"conn_{uuid.uuid4().hex[:16]}",
                owner=owner or f"user:{user}",
                provider=provider,
                code=SecretStr(code),
                code_verifier=SecretStr(verifier) if verifier else None,
                redirect_uri=REDIRECT_URI,
                requested_scopes=scopes or [],
            ),
            vault.ConnectionInfo,
        )
        assert isinstance(reply, vault.ConnectionInfo), reply
        return reply

    async def resolve(
        self,
        provider: str | None = "sandbox",
        *,
        user: str = "alice",
        tenant: str = TENANT,
        grant: str | None = None,
        run_id: str = "run-1",
        app_id: str = "app-1",
        grant_providers: list[str] | dict[str, list[str]] | None = None,
        **extra: Any,
    ) -> vault.ResolveReply | ErrorReply:
        """Resolve as a runner does: with a run grant (minted here for the user and the provider
        unless given) on the tenant's subject."""
        if grant is None:
            named = grant_providers or [provider or str(extra.get("app"))]
            grant = mint_grant(tenant, user, named, run_id=run_id, app_id=app_id)
        return await self.call(
            tenant_scoped(vault.SUBJECT_RESOLVE, tenant),
            vault.ResolveRequest(grant=SecretStr(grant), provider=provider, **extra),
            vault.ResolveReply,
        )

    async def token(self, provider: str = "sandbox", **kwargs: Any) -> str:
        reply = await self.resolve(provider, **kwargs)
        assert isinstance(reply, vault.ResolveReply), reply
        return reply.access_token.get_secret_value()

    async def resolve_records(self) -> list[AuditRecord]:
        """Every `token.resolved` audit record on the AUDIT stream so far, in order."""
        js = self.runtime.nats.jetstream()
        info = await js.stream_info("AUDIT")
        records = []
        for seq in range(info.state.first_seq, info.state.last_seq + 1):
            event = decode_event((await js.get_msg("AUDIT", seq)).data or b"")
            if isinstance(event, AuditRecord) and event.action == AuditAction.TOKEN_RESOLVED:
                records.append(event)
        return records

    async def sql(self, statement: str, **params: Any) -> list[Any]:
        from sqlalchemy import text

        async with self.runtime.transaction() as session:
            result = await session.execute(text(statement), params)
            return list(result.all()) if result.returns_rows else []

    async def expire(self, connection_id: str) -> None:
        """Make the stored access token look expired (the provider's copy stays valid)."""
        await self.sql(
            "UPDATE vault.connections SET expires_at = now() - interval '1 second' WHERE id = :id",
            id=connection_id,
        )


@contextlib.asynccontextmanager
async def running_vault(settings: VaultSettings, sandbox: SandboxServer) -> AsyncIterator[VaultHarness]:
    """A vault started with `settings`, stopped on exit."""
    runtime = create_runtime(settings)
    await runtime.start()
    try:
        yield VaultHarness(runtime, sandbox)
    finally:
        await runtime.stop()


async def gather_all(*coros: Any) -> list[Any]:
    return list(await asyncio.gather(*coros))
