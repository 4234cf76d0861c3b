"""Test support for the gateway: a real sandbox server, the gateway runtime, and a stand-in vault.

The stand-in answers the vault subjects the gateway uses over real NATS (it is a stand-in for a
service, not for NATS) and performs real code exchanges against the sandbox with the provider library.
"""

import asyncio
import json
import uuid
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx
import uvicorn
from fixtures.infra import free_port

from grantline.auth_gateway.app import create_runtime
from grantline.auth_gateway.settings import GatewaySettings
from grantline.common.contract import vault, vault_admin
from grantline.common.contract.errors import ErrorCode, ErrorReply
from grantline.common.contract.registry import encode_message
from grantline.providers.catalogue import load_catalogue
from grantline.providers.token_request import build_token_request
from grantline.providers.token_response import parse_token_response
from grantline.sandbox import SandboxState, create_sandbox_app

PUBLIC_URL = "http://gateway.test"
REDIRECT_URI = f"{PUBLIC_URL}/v1/oauth/callback"
CLIENT_ID = "gw-client"
CLIENT_SECRET = "sbx-secret-gateway-tests"


@asynccontextmanager
async def sandbox_server():
    state = SandboxState()
    state.register_client(CLIENT_ID, CLIENT_SECRET, redirect_uris=[REDIRECT_URI])
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_sandbox_app(state), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", state
    finally:
        server.should_exit = True
        await task


class StandInVault:
    """Keeps provider apps and connections in memory; exchanges codes with the sandbox for real."""

    def __init__(self, sandbox_url: str) -> None:
        self.catalogue = load_catalogue(sandbox_url=sandbox_url)
        self.apps: dict[tuple[str, str], vault_admin.ProviderAppInfo] = {}
        self.connections: dict[str, vault.ConnectionInfo] = {}
        self.exchanges: list[vault.ExchangeRequest] = []
        self.revocations: list[vault.RevokeRequest] = []
        self.webhook_verdicts: dict[bytes, vault_admin.WebhookVerdict] = {}
        self._subs = []

    async def start(self, nc) -> None:
        handlers = {
            vault_admin.SUBJECT_PROVIDER_APP_PUT: (vault_admin.PutProviderAppRequest, self.put_app),
            vault_admin.SUBJECT_PROVIDER_APP_GET: (vault_admin.ProviderAppRef, self.get_app),
            vault_admin.SUBJECT_PROVIDER_APP_LIST: (vault_admin.ProviderAppRef, self.list_apps),
            vault_admin.SUBJECT_CONNECTION_GET: (vault_admin.ConnectionRef, self.get_connection),
            vault_admin.SUBJECT_CONNECTION_LIST: (vault_admin.ListConnectionsRequest, self.list_connections),
            vault_admin.SUBJECT_WEBHOOK_VERIFY: (vault_admin.WebhookVerifyRequest, self.verify_webhook),
            vault.SUBJECT_EXCHANGE: (vault.ExchangeRequest, self.exchange),
            vault.SUBJECT_REVOKE: (vault.RevokeRequest, self.revoke),
        }
        for subject, (model, handler) in handlers.items():

            async def on_message(msg, model=model, handler=handler):
                reply = await handler(model.model_validate_json(msg.data))
                await msg.respond(encode_message(reply))

            self._subs.append(await nc.subscribe(subject, cb=on_message))

    async def stop(self) -> None:
        for sub in self._subs:
            await sub.unsubscribe()

    async def put_app(self, req):
        info = vault_admin.ProviderAppInfo(
            tenant_id=req.tenant_id,
            provider=req.provider,
            client_id=req.client_id,
            has_client_secret=req.client_secret is not None,
            scopes=req.scopes,
            settings=req.settings,
            allow_workspace_fallback=req.allow_workspace_fallback,
            enabled=req.enabled,
        )
        self.apps[(req.tenant_id, req.provider)] = info
        return info

    async def get_app(self, req):
        app = self.apps.get((req.tenant_id, req.provider))
        return app or ErrorReply.of(ErrorCode.NOT_FOUND, "no such provider app")

    async def list_apps(self, req):
        return vault_admin.ProviderAppList(
            provider_apps=[a for (t, _), a in self.apps.items() if t == req.tenant_id]
        )

    async def get_connection(self, req):
        info = self.connections.get(req.connection_id)
        if info is None or info.tenant_id != req.tenant_id:
            return ErrorReply.of(ErrorCode.NOT_FOUND, "no such connection")
        return info

    async def list_connections(self, req):
        found = [
            c
            for c in self.connections.values()
            if c.tenant_id == req.tenant_id
            and (req.owner is None or c.owner == req.owner)
            and (req.provider is None or c.provider == req.provider)
            and (req.status is None or c.status == req.status)
        ]
        return vault_admin.ConnectionList(connections=found)

    async def exchange(self, req):
        self.exchanges.append(req)
        definition = self.catalogue.get(req.provider)
        url, headers, body, body_format = build_token_request(
            definition,
            "authorization_code",
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            code=req.code.get_secret_value(),
            redirect_uri=req.redirect_uri,
            code_verifier=req.code_verifier.get_secret_value() if req.code_verifier else None,
        )
        async with httpx.AsyncClient() as client:
            response = await client.post(
                url, headers=headers, **({"json": body} if body_format == "json" else {"data": body})
            )
        if response.status_code != 200:
            return ErrorReply.of(ErrorCode.INVALID_REQUEST, "the provider refused the code")
        tokens = parse_token_response(
            definition, response.json(), now=datetime.now(UTC), requested_scopes=req.requested_scopes
        )
        info = vault.ConnectionInfo(
            connection_id=req.connection_id,
            tenant_id=req.tenant_id,
            owner=req.owner,
            provider=req.provider,
            status="active",
            scopes=list(tokens.scopes or req.requested_scopes),
            expires_at=tokens.expires_at,
            name=req.name or f"{req.provider} connection",
        )
        self.connections[req.connection_id] = info
        return info

    async def revoke(self, req):
        self.revocations.append(req)
        info = self.connections.get(req.connection_id)
        if info is None or info.tenant_id != req.tenant_id:
            return ErrorReply.of(ErrorCode.NOT_FOUND, "no such connection")
        self.connections[req.connection_id] = info.model_copy(update={"status": "revoked"})
        return vault.OkReply()

    async def verify_webhook(self, req):
        return self.webhook_verdicts.get(req.body) or vault_admin.WebhookVerdict(
            verified=False, reason="bad_signature"
        )


@asynccontextmanager
async def running_gateway(nats_url: str, database_url: str, sandbox_url: str):
    settings = GatewaySettings(
        nats_url=nats_url,
        database_url=database_url,
        environment="test",
        database_pool_size=4,
        sandbox_url=sandbox_url,
        public_url=PUBLIC_URL,
        allow_private_provider_urls=True,
        bus_timeout_seconds=5,
    )
    runtime = create_runtime(settings)
    await runtime.start()
    try:
        transport = httpx.ASGITransport(app=runtime.http_application())
        async with httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL) as client:
            yield runtime, client
    finally:
        await runtime.stop()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def new_user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


def dumps(value) -> str:
    return json.dumps(value, default=str)
