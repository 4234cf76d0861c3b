"""The vault's HTTP to providers: SSRF refusal at connect time, error classes, re-send rules, limits.

A scripted HTTP server on a loopback port plays each case (answer, hang up after reading the
request, answer too much), so each failure is the real socket behaviour, not a stub.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from grantline.devstack.embedded import free_port
from grantline.providers.catalogue import load_catalogue
from grantline.providers.token_response import TokenSet
from grantline.vault.adapters import provider_http
from grantline.vault.adapters.provider_client import ClientCredentials, ProviderClient, ProviderUnavailable
from grantline.vault.adapters.provider_http import AiohttpTransport, ProviderTransportError, _EgressProxies
from grantline.vault.adapters.url_guard import UnsafeProviderUrl
from grantline.vault.settings import VaultSettings

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
TOKEN_REPLY = b'{"access_token":"at-new","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-new"}'


class ScriptedServer:
    """Counts requests (complete request heads read) and answers each connection with ``script``."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.requests = 0
        self.port = free_port()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.script(reader, writer)
        finally:
            writer.close()

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await reader.readexactly(length)
        self.requests += 1
        return body


@asynccontextmanager
async def scripted(script: Callable[[ScriptedServer], Script]) -> AsyncIterator[ScriptedServer]:
    server = ScriptedServer(lambda r, w: asyncio.sleep(0))
    server.script = script(server)
    listening = await asyncio.start_server(server._serve, "127.0.0.1", server.port)
    try:
        yield server
    finally:
        listening.close()
        await listening.wait_closed()


def answering(status: int, body: bytes) -> Callable[[ScriptedServer], Script]:
    def script(server: ScriptedServer) -> Script:
        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                try:
                    await server.read_request(reader)
                except asyncio.IncompleteReadError:
                    return
                writer.write(
                    b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                    % (status, len(body), body)
                )
                await writer.drain()

        return serve

    return script


def hanging_up(server: ScriptedServer) -> Script:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await server.read_request(reader)  # the provider got the request, then the line dropped

    return serve


def settings(**overrides: object) -> VaultSettings:
    values: dict[str, object] = {
        "environment": "test",
        "provider_max_attempts": 3,
        "provider_retry_base_seconds": 0.0,
        "provider_timeout_seconds": 5.0,
        **overrides,
    }
    return VaultSettings(**values)  # type: ignore[arg-type]


def previous_tokens() -> TokenSet:
    return TokenSet(
        access_token=SecretStr("at-old"),
        refresh_token=SecretStr("rt-old"),
        expires_at=datetime.now(UTC) + timedelta(minutes=1),
    )


CLIENT = ClientCredentials("client-1", SecretStr("client-secret-1"), {})


async def test_a_host_name_resolving_to_a_private_address_gets_no_connection() -> None:
    async with scripted(answering(200, b"{}")) as server:
        transport = AiohttpTransport(timeout_seconds=5, max_connections=4, allow_private=False)
        try:
            with pytest.raises(UnsafeProviderUrl, match="non-public address"):
                await transport.send("GET", f"http://localhost:{server.port}/", headers={}, body=None)
        finally:
            await transport.aclose()
        assert server.connections == 0


async def test_the_client_refuses_private_and_plain_http_urls_in_production() -> None:
    client = ProviderClient(settings(allow_private_provider_urls=False))
    try:
        with pytest.raises(ProviderUnavailable, match="non-public address"):
            await client.fetch_json("https://localhost:9/keys")
        with pytest.raises(ProviderUnavailable, match="not a public address"):
            await client.fetch_json("https://10.1.2.3/keys")
        with pytest.raises(ProviderUnavailable, match="must use https"):
            await client.fetch_json("http://example.com/keys")
    finally:
        await client.aclose()


async def test_development_may_call_a_loopback_provider() -> None:
    async with scripted(answering(200, b'{"keys": []}')) as server:
        client = ProviderClient(settings(allow_private_provider_urls=True))
        try:
            assert await client.fetch_json(f"http://127.0.0.1:{server.port}/keys") == {"keys": []}
        finally:
            await client.aclose()


async def test_failures_say_whether_the_request_certainly_never_left() -> None:
    transport = AiohttpTransport(timeout_seconds=5, max_connections=4, allow_private=True)
    try:
        with pytest.raises(ProviderTransportError) as refused:
            await transport.send("POST", f"http://127.0.0.1:{free_port()}/token", headers={}, body=b"a=b")
        assert refused.value.certainly_not_sent
        async with scripted(hanging_up) as server:
            with pytest.raises(ProviderTransportError) as dropped:
                await transport.send("POST", f"http://127.0.0.1:{server.port}/token", headers={}, body=b"a=b")
            assert not dropped.value.certainly_not_sent
            assert server.requests == 1
    finally:
        await transport.aclose()


async def test_a_refresh_whose_answer_was_lost_is_resent_only_when_the_token_does_not_rotate() -> None:
    for provider, expected_requests in (("sandbox_rotating", 1), ("sandbox", 3)):
        async with scripted(hanging_up) as server:
            # The sandbox entries' endpoints point at whatever sandbox URL the catalogue is given.
            definition = load_catalogue(sandbox_url=f"http://127.0.0.1:{server.port}").get(provider)
            client = ProviderClient(settings(allow_private_provider_urls=True))
            try:
                with pytest.raises(ProviderUnavailable):
                    await client.refresh(definition, CLIENT, previous_tokens())
            finally:
                await client.aclose()
            assert server.requests == expected_requests, provider


async def test_a_refresh_reaches_the_provider_and_reads_its_answer() -> None:
    async with scripted(answering(200, TOKEN_REPLY)) as server:
        definition = load_catalogue(sandbox_url=f"http://127.0.0.1:{server.port}").get("sandbox")
        client = ProviderClient(settings(allow_private_provider_urls=True))
        try:
            tokens = await client.refresh(definition, CLIENT, previous_tokens())
            again = await client.refresh(definition, CLIENT, previous_tokens())
        finally:
            await client.aclose()
    assert tokens.access_token.get_secret_value() == "at-new"
    assert again.refresh_token is not None and again.refresh_token.get_secret_value() == "rt-new"
    assert server.connections == 1  # the connection was kept alive for the second refresh


async def test_an_oversized_answer_is_not_read_into_memory() -> None:
    huge = b"x" * (provider_http.MAX_RESPONSE_BYTES + 1)
    async with scripted(answering(200, huge)) as server:
        transport = AiohttpTransport(timeout_seconds=5, max_connections=4, allow_private=True)
        try:
            with pytest.raises(ProviderTransportError, match="too large"):
                await transport.send("GET", f"http://127.0.0.1:{server.port}/", headers={}, body=None)
        finally:
            await transport.aclose()


def test_egress_proxies_come_from_the_environment_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://egress.internal:3128")
    monkeypatch.setenv("NO_PROXY", "idp.internal")
    proxies = _EgressProxies()
    monkeypatch.delenv("HTTPS_PROXY")
    assert proxies.for_url("https://slack.com/api/oauth.v2.access") == "http://egress.internal:3128"
    assert proxies.for_url("https://idp.internal/token") is None
    assert proxies.for_url("http://plain.example/") is None
