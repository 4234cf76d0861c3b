"""Helpers for the refresher tests: a real sandbox provider over HTTP, and a vault.refresh stand-in.

The stand-in plays the vault (a service), not NATS: it answers ``vault.refresh`` on the real NATS
server, keeps per-connection locks as the vault does, performs real refreshes against the sandbox
provider when asked to, and publishes the vault's events on the real CONNECTIONS stream.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import uvicorn
from nats.aio.client import Client
from nats.aio.msg import Msg

from grantline.contract import encode_message
from grantline.contract.connections import (
    ConnectionEvent,
    ConnectionGranted,
    ReauthRequired,
    TokenRefreshed,
)
from grantline.contract.errors import ErrorCode, ErrorDetail, ErrorReply
from grantline.contract.vault import SUBJECT_REFRESH, RefreshReply, RefreshRequest
from grantline.devstack.embedded import free_port
from grantline.providers.authorize import build_authorize_url, code_challenge_s256, new_code_verifier
from grantline.providers.catalogue import load_catalogue
from grantline.providers.token_request import build_token_request
from grantline.providers.token_response import TokenResponseError, TokenSet, parse_token_response
from grantline.refresher.entrypoints.connection_events import DURABLE
from grantline.refresher.settings import RefresherSettings
from grantline.runtime.nats.streams import CONNECTIONS
from grantline.sandbox import SandboxState, create_sandbox_app

CLIENT_ID = "refresher-tests"
CLIENT_SECRET = "sbx_secret_refresher_tests"
REDIRECT_URI = "https://grantline.test/v1/oauth/callback"
TENANT = "tenant-r"
SECRET_PREFIXES = ("sbx_at_", "sbx_rt_", "sbx_code_", CLIENT_SECRET)


class SandboxServer:
    """The sandbox provider served over real HTTP on a free port, in a thread."""

    def __init__(self) -> None:
        self.state = SandboxState()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_sandbox_app(self.state),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            assert time.monotonic() < deadline, "sandbox did not start"
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)

    def reset(self) -> None:
        self.state.reset(keep_clients=False)
        self.state.register_client(CLIENT_ID, CLIENT_SECRET)


def refresher_settings(nats_url: str, database_url: str, **overrides: object) -> RefresherSettings:
    """Settings for a test refresher: fast polling, short leases and backoffs."""
    values: dict[str, object] = {
        "nats_url": nats_url,
        "database_url": database_url,
        "environment": "test",
        "database_pool_size": 4,
        "refresh_poll_seconds": 0.05,
        "refresh_lease_seconds": 5.0,
        "refresh_retry_base_seconds": 0.2,
        "refresh_retry_max_seconds": 1.0,
        "vault_timeout_seconds": 2.0,
        "expiry_scan_seconds": 0.1,
    }
    values.update(overrides)
    return RefresherSettings(**values)  # type: ignore[arg-type]


@dataclass
class HeldConnection:
    """What the stand-in vault holds for one connection (in memory; it is a test double of a service)."""

    tenant_id: str
    owner: str
    provider: str
    expires_at: datetime | None
    tokens: TokenSet | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class VaultStandIn:
    """Answers ``vault.refresh``: against the sandbox when it holds tokens, else by counting."""

    def __init__(self, nc: Client, *, sandbox: SandboxServer | None = None, lifetime: float = 3600) -> None:
        self.nc = nc
        self.sandbox = sandbox
        self.lifetime = timedelta(seconds=lifetime)
        self.held: dict[str, HeldConnection] = {}
        self.requests: Counter[str] = Counter()
        self.refreshes: Counter[str] = Counter()
        self.refreshed_at: dict[str, list[datetime]] = {}
        self.only_if: list[datetime | None] = []
        # While cleared, requests are received (counted) but never answered: a vault that hangs.
        self.answering = asyncio.Event()
        self.answering.set()
        self.canned_errors: list[ErrorReply] = []
        # Requests being answered now, the most there ever were at once, and how long each answer takes.
        self.in_flight = 0
        self.most_in_flight = 0
        self.answer_delay = 0.0
        self._catalogue = load_catalogue(sandbox_url=sandbox.url) if sandbox else None
        self._http = httpx.AsyncClient(timeout=5)
        self._sub = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._sub = await self.nc.subscribe(SUBJECT_REFRESH, queue="vault.refresh", cb=self._on_request)

    async def stop(self) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._http.aclose()

    async def publish(self, event: ConnectionEvent) -> None:
        """Publish an event on JetStream as the vault's outbox relay would."""
        await self.nc.jetstream().publish(
            event.subject(), encode_message(event), headers={"Nats-Msg-Id": str(event.id)}
        )

    # -- granting ---------------------------------------------------------------------------------

    async def grant(
        self, connection_id: str, *, expires_in: float | None, provider: str = "sandbox", **fields: object
    ) -> ConnectionGranted:
        """Hold a connection (no tokens) and publish its grant."""
        expires_at = datetime.now(UTC) + timedelta(seconds=expires_in) if expires_in is not None else None
        event = ConnectionGranted(
            tenant_id=TENANT,
            connection_id=connection_id,
            owner="user:alice",
            provider=provider,
            expires_at=expires_at,
            **fields,  # type: ignore[arg-type]
        )
        self.held[connection_id] = HeldConnection(TENANT, event.owner, provider, expires_at)
        await self.publish(event)
        return event

    async def grant_at_sandbox(self, connection_id: str, *, profile_id: str = "sandbox") -> ConnectionGranted:
        """Authorize and exchange a code at the sandbox (real HTTP), hold the tokens, publish the grant."""
        assert self.sandbox is not None and self._catalogue is not None
        definition = self._catalogue.get(profile_id)
        verifier = new_code_verifier()
        url = build_authorize_url(
            definition,
            client_id=CLIENT_ID,
            redirect_uri=REDIRECT_URI,
            scopes=["read", "offline_access"],
            state="st",
            code_challenge=code_challenge_s256(verifier),
        )
        response = await self._http.get(url)
        code = parse_qs(urlsplit(response.headers["location"]).query)["code"][0]
        request = build_token_request(
            definition,
            "authorization_code",
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            code=code,
            redirect_uri=REDIRECT_URI,
            code_verifier=verifier,
        )
        reply = await self._post(request)
        tokens = parse_token_response(definition, reply.json(), now=datetime.now(UTC))
        held = HeldConnection(TENANT, "user:alice", profile_id, tokens.expires_at, tokens)
        self.held[connection_id] = held
        event = ConnectionGranted(
            tenant_id=TENANT,
            connection_id=connection_id,
            owner=held.owner,
            provider=profile_id,
            expires_at=tokens.expires_at,
            refresh_token_expires_at=tokens.refresh_token_expires_at,
            refreshable=tokens.refresh_token is not None,
        )
        await self.publish(event)
        return event

    async def _post(self, request: object) -> httpx.Response:
        url, headers, body, body_format = request  # type: ignore[misc]
        if body_format == "json":
            return await self._http.post(url, headers=headers, json=body)
        return await self._http.post(url, headers=headers, data=body)

    # -- answering --------------------------------------------------------------------------------

    async def _on_request(self, msg: Msg) -> None:
        # nats-py runs one subscription's callbacks one at a time: answer in tasks, as a vault would.
        request = RefreshRequest.model_validate_json(msg.data)
        self.requests[request.connection_id] += 1
        self.only_if.append(request.only_if_expiring_before)
        task = asyncio.create_task(self._answer(msg, request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, msg: Msg, request: RefreshRequest) -> None:
        await self.answering.wait()
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.answer_delay:
                await asyncio.sleep(self.answer_delay)
            reply = await self._refresh(request)
        finally:
            self.in_flight -= 1
        await msg.respond(encode_message(reply))

    async def _refresh(self, request: RefreshRequest) -> RefreshReply | ErrorReply:
        if self.canned_errors:
            return self.canned_errors.pop(0)
        held = self.held.get(request.connection_id)
        if held is None:
            return ErrorReply.of(ErrorCode.NOT_FOUND, "no such connection")
        async with held.lock:
            before = request.only_if_expiring_before
            if before is not None and held.expires_at is not None and held.expires_at >= before:
                return RefreshReply(
                    connection_id=request.connection_id, expires_at=held.expires_at, refreshed=False
                )
            if held.tokens is not None:
                error = await self._refresh_at_sandbox(held)
                if error is not None:
                    if error.error.code is ErrorCode.REAUTH_REQUIRED:
                        await self.publish(
                            ReauthRequired(
                                tenant_id=held.tenant_id,
                                connection_id=request.connection_id,
                                owner=held.owner,
                                provider=held.provider,
                                reason="invalid_grant",
                            )
                        )
                    return error
            else:
                held.expires_at = datetime.now(UTC) + self.lifetime
            self.refreshes[request.connection_id] += 1
            self.refreshed_at.setdefault(request.connection_id, []).append(datetime.now(UTC))
            await self.publish(
                TokenRefreshed(
                    tenant_id=held.tenant_id,
                    connection_id=request.connection_id,
                    owner=held.owner,
                    provider=held.provider,
                    expires_at=held.expires_at,
                )
            )
            return RefreshReply(
                connection_id=request.connection_id, expires_at=held.expires_at, refreshed=True
            )

    async def _refresh_at_sandbox(self, held: HeldConnection) -> ErrorReply | None:
        assert (
            self._catalogue is not None and held.tokens is not None and held.tokens.refresh_token is not None
        )
        definition = self._catalogue.get(held.provider)
        request = build_token_request(
            definition,
            "refresh_token",
            client_id=CLIENT_ID,
            client_secret=CLIENT_SECRET,
            refresh_token=held.tokens.refresh_token,
        )
        response = await self._post(request)
        if response.status_code == 429 or response.status_code >= 500:
            retry_after = response.headers.get("retry-after")
            return ErrorReply(
                error=ErrorDetail(
                    code=ErrorCode.PROVIDER_UNAVAILABLE,
                    message=f"provider answered {response.status_code}",
                    retry_after_seconds=float(retry_after) if retry_after else None,
                )
            )
        try:
            tokens = parse_token_response(
                definition, response.json(), now=datetime.now(UTC), previous=held.tokens
            )
        except TokenResponseError as error:
            if error.is_invalid_grant:
                return ErrorReply.of(ErrorCode.REAUTH_REQUIRED, "the provider refused the refresh token")
            return ErrorReply.of(ErrorCode.PROVIDER_UNAVAILABLE, "the provider's answer was unusable")
        held.tokens = tokens
        held.expires_at = tokens.expires_at
        return None


# -- reading the schedule ------------------------------------------------------------------------


async def rows(database_url: str) -> dict[str, dict[str, object]]:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = conn.cursor(row_factory=psycopg.rows.dict_row)
        await cursor.execute("SELECT * FROM refresher.refresh_schedule")
        return {row["connection_id"]: row for row in await cursor.fetchall()}


async def settled(database_url: str, ids: list[str]) -> bool:
    """Every connection is known, unleased, and not due for a long while (or ended)."""
    current = await rows(database_url)
    far = datetime.now(UTC).timestamp() + 600
    return all(
        cid in current
        and current[cid]["lease_token"] is None
        and (current[cid]["next_attempt_at"] is None or current[cid]["next_attempt_at"].timestamp() > far)  # type: ignore[union-attr]
        for cid in ids
    )


async def consumer_exists(vault: VaultStandIn) -> bool:
    """The refresher process is up: its durable consumer exists (so its streams do too)."""
    try:
        await vault.nc.jetstream().consumer_info(CONNECTIONS.name, DURABLE)
    except Exception:
        return False
    return True
