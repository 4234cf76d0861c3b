"""Rate limits hold across gateway replicas: two gateway runtimes on one database share each counter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import pytest
from gateway_support import KEY_A, PUBLIC_URL, bearer, common_settings, started

from grantline.auth_gateway.app import create_runtime
from grantline.auth_gateway.bootstrap import ensure_tenant_with_key
from grantline.auth_gateway.settings import GatewaySettings

WINDOW = 600  # long enough that no test straddles two windows


@asynccontextmanager
async def two_gateways(
    nats_url: str, database_url: str, sandbox_url: str, **limits: Any
) -> AsyncIterator[tuple[Any, Any]]:
    """Two gateway runtimes (replicas) on one database; `client(i, address)` talks to replica i."""
    settings = GatewaySettings(
        **common_settings(nats_url, database_url),
        sandbox_url=sandbox_url,
        public_url=PUBLIC_URL,
        allow_private_provider_urls=True,
        bus_timeout_seconds=1,
        rate_limit_window_seconds=WINDOW,
        **limits,
    )
    async with AsyncExitStack() as exits:
        replicas = [await exits.enter_async_context(started(create_runtime(settings))) for _ in range(2)]

        def client(replica: int, address: str = "198.51.100.7") -> httpx.AsyncClient:
            app = replicas[replica].http_application()
            transport = httpx.ASGITransport(app=app, client=(address, 40000))
            return httpx.AsyncClient(transport=transport, base_url=PUBLIC_URL)

        yield replicas, client


def assert_rate_limited(response: httpx.Response, limit: str) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert 1 <= int(response.headers["retry-after"]) <= WINDOW
    problem = response.json()
    assert problem["code"] == "rate_limited"
    assert problem["limit"] == limit
    assert problem["retry_after"] == int(response.headers["retry-after"])


async def test_failed_api_key_guesses_are_counted_across_replicas(nats_url, database_url, servers):
    ensure_tenant_with_key(database_url, name="tenant-a", api_key=KEY_A)
    async with (
        two_gateways(nats_url, database_url, servers.sandbox_url, rate_limit_failed_auth_per_address=3) as (
            _,
            client,
        ),
        client(0) as first,
        client(1) as second,
        client(1, "198.51.100.8") as elsewhere,
    ):
        for guesser, n in ((first, 1), (first, 2), (second, 3)):
            guess = f"glk_guess{n}_0123456789abcdefghijklmnop"
            assert (await guesser.get("/v1/connections", headers=bearer(guess))).status_code == 401
        # Three failures through two replicas: the address is now refused, even with a right key,
        # on either replica, and the refusal does not echo what was sent.
        for replica in (first, second):
            refused = await replica.get("/v1/connections", headers=bearer(KEY_A))
            assert_rate_limited(refused, "failed_auth_per_address")
            assert KEY_A not in refused.text
        # Another address is not affected (no vault runs here, so past authentication the listing
        # answers 503), and no credential at all is not a guess.
        listing = await elsewhere.get("/v1/connections", headers=bearer(KEY_A))
        assert listing.status_code not in (401, 429)
        assert (await elsewhere.get("/v1/connections")).status_code == 401


async def test_failed_guesses_of_one_key_prefix_are_limited_whatever_the_address(
    nats_url, database_url, servers
):
    ensure_tenant_with_key(database_url, name="tenant-a", api_key=KEY_A)
    async with two_gateways(
        nats_url, database_url, servers.sandbox_url, rate_limit_failed_auth_per_key_prefix=2
    ) as (_, client):
        near_miss = KEY_A[:-1] + ("x" if KEY_A[-1] != "x" else "y")  # same first characters
        for replica, address in ((0, "203.0.113.1"), (1, "203.0.113.2")):
            async with client(replica, address) as guesser:
                assert (await guesser.get("/v1/connections", headers=bearer(near_miss))).status_code == 401
        async with client(0, "203.0.113.3") as third:
            refused = await third.get("/v1/connections", headers=bearer(KEY_A))
        assert_rate_limited(refused, "failed_auth_per_key_prefix")


async def test_oauth_state_guesses_are_limited_per_address(nats_url, database_url, servers):
    async with (
        two_gateways(nats_url, database_url, servers.sandbox_url, rate_limit_failed_state_per_address=2) as (
            _,
            client,
        ),
        client(0) as first,
        client(1) as second,
    ):
        for replica, n in ((first, 1), (second, 2)):
            answer = await replica.get("/v1/oauth/callback", params={"state": f"guess-{n}", "code": "c"})
            assert answer.status_code == 400
        assert_rate_limited(
            await first.get("/v1/oauth/callback", params={"state": "guess-3", "code": "c"}),
            "failed_state_per_address",
        )


async def test_webhook_deliveries_are_limited_per_address_and_provider(nats_url, database_url, servers):
    async with (
        two_gateways(nats_url, database_url, servers.sandbox_url, rate_limit_webhooks_per_address=2) as (
            _,
            client,
        ),
        client(0) as first,
        client(1) as second,
    ):
        for replica in (first, second):
            answer = await replica.post("/v1/webhooks/slack", content=b"{}")
            assert answer.status_code != 429
        assert_rate_limited(await second.post("/v1/webhooks/slack", content=b"{}"), "webhooks_per_address")
        # Another provider's endpoint keeps its own count.
        assert (await first.post("/v1/webhooks/github", content=b"{}")).status_code != 429


async def test_initiate_calls_are_limited_per_tenant(nats_url, database_url, servers):
    ensure_tenant_with_key(database_url, name="tenant-a", api_key=KEY_A)
    body = {"provider": "slack", "user_id": "user-1", "return_to": "https://app.example/done"}
    async with (
        two_gateways(nats_url, database_url, servers.sandbox_url, rate_limit_initiate_per_tenant=2) as (
            _,
            client,
        ),
        client(0) as first,
        client(1, "198.51.100.99") as second,
    ):
        for replica in (first, second):
            answer = await replica.post("/v1/connections/initiate", json=body, headers=bearer(KEY_A))
            assert answer.status_code != 429
        assert_rate_limited(
            await first.post("/v1/connections/initiate", json=body, headers=bearer(KEY_A)),
            "initiate_per_tenant",
        )


@pytest.mark.parametrize("limit", ["rate_limit_failed_auth_per_address", "rate_limit_window_seconds"])
def test_limits_must_be_positive(limit):
    with pytest.raises(ValueError):
        GatewaySettings(environment="test", **{limit: 0})


async def test_admin_sign_in_guesses_share_the_api_limit(nats_url, database_url, servers):
    ensure_tenant_with_key(database_url, name="tenant-a", api_key=KEY_A)
    async with (
        two_gateways(nats_url, database_url, servers.sandbox_url, rate_limit_failed_auth_per_address=2) as (
            _,
            client,
        ),
        client(0) as first,
        client(1) as second,
    ):
        assert (await first.get("/v1/connections", headers=bearer(f"{KEY_A}x"))).status_code == 401
        wrong = await second.post("/admin/sign-in", data={"api_key": f"{KEY_A}y"})
        assert wrong.status_code == 401
        refused = await first.post("/admin/sign-in", data={"api_key": KEY_A})
        assert refused.status_code == 429
        assert "set-cookie" not in refused.headers and KEY_A not in refused.text
