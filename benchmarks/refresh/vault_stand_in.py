"""A minimal ``vault.refresh`` responder for the benchmark (NOT the real vault; clearly a stand-in).

For each request it does what the vault does on the wire: honours ``only_if_expiring_before``, makes
a real refresh_token request to the sandbox provider over HTTP, publishes ``connections.refreshed``
on JetStream, and replies with the new expiry. It keeps tokens in memory and encrypts nothing.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

from nats.aio.client import Client
from nats.aio.msg import Msg

from grantline.contract import encode_message
from grantline.contract.connections import TokenRefreshed
from grantline.contract.errors import ErrorCode, ErrorReply
from grantline.contract.vault import SUBJECT_REFRESH, RefreshReply, RefreshRequest
from grantline.providers.authorize import build_authorize_url
from grantline.providers.catalogue import load_catalogue
from grantline.providers.token_request import ProviderRequest, build_token_request
from grantline.providers.token_response import TokenSet, parse_token_response
from grantline.vault.adapters.provider_http import AiohttpTransport, ProviderResponse

CLIENT_ID = "bench-client"
CLIENT_SECRET = "sbx_secret_bench"
REDIRECT_URI = "https://grantline.test/v1/oauth/callback"
TOKEN_LIFETIME = timedelta(minutes=10)


@dataclass
class Held:
    tokens: TokenSet
    expires_at: datetime | None


class VaultStandIn:
    """Holds sandbox tokens per connection id and refreshes them on request."""

    def __init__(
        self, nc: Client, sandbox_url: str, *, concurrency: int = 64, skip_provider: bool = False
    ) -> None:
        # skip_provider: answer without calling the sandbox (measures the refresher's own ceiling).
        self.skip_provider = skip_provider
        self.nc = nc
        self.sandbox_url = sandbox_url
        self.definition = load_catalogue(sandbox_url=sandbox_url).get("sandbox")
        # The vault's own HTTP transport: the stand-in's HTTP costs what the vault's does.
        self.http = AiohttpTransport(timeout_seconds=10, max_connections=concurrency, allow_private=True)
        self.held: dict[str, Held] = {}
        self.refreshed_at: dict[str, datetime] = {}
        self.refreshes = 0
        self.errors = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def register_client(self) -> None:
        for method, path, body in (
            ("POST", "/_sandbox/clients", {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}),
            ("PUT", "/_sandbox/settings", {"expires_in": 600}),
        ):
            response = await self.http.send(
                method,
                f"{self.sandbox_url}{path}",
                headers={"Content-Type": "application/json"},
                body=json.dumps(body).encode(),
            )
            assert response.status_code < 300, (path, response.status_code)

    async def aclose(self) -> None:
        await self.http.aclose()

    async def grant(self, connection_id: str) -> None:
        """A real authorization-code grant at the sandbox (auto-approved)."""
        url = build_authorize_url(
            self.definition, client_id=CLIENT_ID, redirect_uri=REDIRECT_URI, scopes=["read"], state="s"
        )
        location = (await self.http.send("GET", url, headers={}, body=None)).headers["location"]
        code = parse_qs(urlsplit(location).query)["code"][0]
        request = build_token_request(
            self.definition,
            "authorization_code",
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            code=code,
            redirect_uri=REDIRECT_URI,
        )
        tokens = parse_token_response(
            self.definition, json.loads((await self._post(request)).body), now=datetime.now(UTC)
        )
        self.held[connection_id] = Held(tokens, tokens.expires_at)

    async def start(self) -> None:
        await self.nc.subscribe(SUBJECT_REFRESH, queue="vault.refresh", cb=self._on_request)

    async def _post(self, request: ProviderRequest) -> ProviderResponse:
        body = urlencode(request.body or {}).encode()
        return await self.http.send("POST", request.url, headers=request.headers, body=body)

    async def _on_request(self, msg: Msg) -> None:
        task = asyncio.create_task(self._answer(msg))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, msg: Msg) -> None:
        request = RefreshRequest.model_validate_json(msg.data)
        held = self.held.get(request.connection_id)
        reply: RefreshReply | ErrorReply
        if held is None:
            reply = ErrorReply.of(ErrorCode.NOT_FOUND, "unknown connection")
        elif (
            request.only_if_expiring_before is not None
            and held.expires_at is not None
            and held.expires_at >= request.only_if_expiring_before
        ):
            reply = RefreshReply(
                connection_id=request.connection_id, expires_at=held.expires_at, refreshed=False
            )
        else:
            reply = await self._refresh(request, held)
        await msg.respond(encode_message(reply))

    async def _refresh(self, request: RefreshRequest, held: Held) -> RefreshReply | ErrorReply:
        call = build_token_request(
            self.definition,
            "refresh_token",
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            refresh_token=held.tokens.refresh_token,
        )
        try:
            if self.skip_provider:
                tokens = held.tokens.model_copy(update={"expires_at": datetime.now(UTC) + TOKEN_LIFETIME})
            else:
                response = await self._post(call)
                tokens = parse_token_response(
                    self.definition, json.loads(response.body), now=datetime.now(UTC), previous=held.tokens
                )
        except Exception:
            self.errors += 1
            return ErrorReply.of(ErrorCode.PROVIDER_UNAVAILABLE, "sandbox refresh failed")
        held.tokens, held.expires_at = tokens, tokens.expires_at
        self.refreshes += 1
        self.refreshed_at[request.connection_id] = datetime.now(UTC)
        event = TokenRefreshed(
            tenant_id=request.tenant_id,
            connection_id=request.connection_id,
            owner="user:bench",
            provider="sandbox",
            expires_at=tokens.expires_at,
        )
        await self.nc.jetstream().publish(
            event.subject(), encode_message(event), headers={"Nats-Msg-Id": str(event.id)}
        )
        return RefreshReply(connection_id=request.connection_id, expires_at=tokens.expires_at, refreshed=True)
