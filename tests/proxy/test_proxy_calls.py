"""A tool holding only a run grant calls the sandbox's REST API through the proxy, on real ports.

The vault (its own process role, over a real NATS and Postgres) resolves the token; the sandbox plays
the provider. What the tool can do: read and write its user's records, stream a large body and an
event stream, see the provider's 429. What it cannot: reach another provider, another user's
connection, a host outside the provider's list (directly, by path tricks or through a redirect).
"""

from __future__ import annotations

import json

from proxy_harness import TENANT, ProxyHarness
from vault_harness import VaultHarness


async def _connected(vault: VaultHarness, user: str = "alice", scopes: list[str] | None = None) -> str:
    await vault.put_app("sandbox")
    info = await vault.connect("sandbox", user=user, scopes=scopes or ["read", "write"])
    return info.connection_id


async def test_a_tool_reads_and_writes_with_only_a_grant(vault: VaultHarness, proxy: ProxyHarness) -> None:
    await _connected(vault)
    grant = proxy.grant("alice")
    created = await proxy.call("POST", "sandbox/items", grant, json={"name": "first"})
    assert created.status_code == 201, created.text
    assert "grantline-error" not in created.headers
    item = created.json()
    assert item["owner"] == "alice"
    read = await proxy.call("GET", f"sandbox/items/{item['id']}", grant)
    assert read.status_code == 200 and read.json()["name"] == "first"
    listed = await proxy.call("GET", "sandbox/items?limit=10", grant)
    assert [i["name"] for i in listed.json()["items"]] == ["first"]


async def test_the_grant_and_cookies_never_reach_the_provider(
    vault: VaultHarness, proxy: ProxyHarness
) -> None:
    await _connected(vault)
    grant = proxy.grant("alice")
    echoed = await proxy.call(
        "POST",
        "sandbox/echo?q=x",
        grant,
        headers={
            "Cookie": "session=abc",
            "Grantline-Tool": "echo-tool",
            "X-Custom": "kept",
            "Connection": "X-Gone",
            "X-Gone": "1",
        },
        content=b"hello",
    )
    assert echoed.status_code == 200, echoed.text
    seen = echoed.json()
    assert seen["headers"]["authorization"] == "<credential>"  # the token the proxy injected
    assert "cookie" not in seen["headers"] and "grantline-tool" not in seen["headers"]
    assert "x-gone" not in seen["headers"]  # listed in Connection: hop-by-hop
    assert seen["headers"]["x-custom"] == "kept"
    assert seen["body_bytes"] == 5 and seen["query"] == {"q": "x"}
    assert grant not in echoed.text


async def test_another_provider_is_refused(vault: VaultHarness, proxy: ProxyHarness) -> None:
    await _connected(vault)
    await vault.put_app("sandbox_github")
    await vault.connect("sandbox_github", user="alice")
    grant = proxy.grant("alice", providers=["sandbox"])
    refused = await proxy.call("GET", "sandbox_github/items", grant)
    assert refused.status_code == 403
    assert refused.headers["grantline-error"] == "forbidden"
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "forbidden"


async def test_another_users_connection_is_out_of_reach(vault: VaultHarness, proxy: ProxyHarness) -> None:
    await _connected(vault, "alice")
    alice = proxy.grant("alice")
    await proxy.call("POST", "sandbox/items", alice, json={"name": "alice's"})
    bob = proxy.grant("bob", run_id="run-bob")
    refused = await proxy.call("GET", "sandbox/items", bob)
    assert refused.status_code == 409 and refused.headers["grantline-error"] == "not_connected"
    await vault.connect("sandbox", user="bob", scopes=["read"])
    own = await proxy.call("GET", "sandbox/items", bob)
    assert own.status_code == 200 and own.json() == {"items": [], "owner": "bob"}


async def test_hosts_outside_the_provider_are_unreachable(vault: VaultHarness, proxy: ProxyHarness) -> None:
    await _connected(vault)
    grant = proxy.grant("alice")
    other_host = await proxy.call(
        "GET", "sandbox/items", grant, headers={"Grantline-Upstream-Host": "evil.test"}
    )
    assert other_host.status_code == 403 and other_host.headers["grantline-error"] == "host_not_allowed"
    for trick in ("sandbox/..%2F..%2Fuserinfo", "sandbox/%2e%2e/%2e%2e/userinfo", "sandbox/a/%5C..%5Cb"):
        climbed = await proxy.call("GET", trick, grant)
        assert climbed.status_code == 400, trick
        assert climbed.headers["grantline-error"] == "invalid_path"
    # Through a redirect: localhost is the same server under another name, which is not the API's host.
    foreign = vault.sandbox.url.replace("127.0.0.1", "localhost") + "/p/standard/api/items"
    redirected = await proxy.call("GET", "sandbox/redirect", grant, params={"to": foreign})
    assert redirected.status_code == 502 and redirected.headers["grantline-error"] == "redirect_refused"
    own = vault.sandbox.url + "/p/standard/api/items"
    followed = await proxy.call("GET", "sandbox/redirect", grant, params={"to": own})
    assert followed.status_code == 200 and followed.json()["owner"] == "alice"


async def test_rate_limits_pass_through_as_the_providers_own(
    vault: VaultHarness, proxy: ProxyHarness
) -> None:
    await _connected(vault)
    limited = await proxy.call("GET", "sandbox/rate_limited?retry_after=9", proxy.grant("alice"))
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "9"
    assert "grantline-error" not in limited.headers  # the provider's answer, not the proxy's


async def test_large_bodies_and_event_streams_stream(vault: VaultHarness, proxy: ProxyHarness) -> None:
    await _connected(vault)
    grant = proxy.grant("alice")
    size = 8 * 1024 * 1024 + 3
    received = 0
    async with proxy.http.stream(
        "GET", f"{proxy.url}/v1/proxy/sandbox/large?size={size}", headers={"Authorization": f"Bearer {grant}"}
    ) as response:
        assert response.status_code == 200
        assert "content-length" not in response.headers  # passed on chunk by chunk, as it came
        async for chunk in response.aiter_raw():
            received += len(chunk)
    assert received == size
    events = []
    async with proxy.http.stream(
        "GET",
        f"{proxy.url}/v1/proxy/sandbox/events?count=3&interval_ms=1",
        headers={"Authorization": f"Bearer {grant}"},
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:])["n"])
    assert events == [1, 2, 3]


async def test_a_missing_or_forged_grant_gets_nothing(vault: VaultHarness, proxy: ProxyHarness) -> None:
    await _connected(vault)
    missing = await proxy.http.get(f"{proxy.url}/v1/proxy/sandbox/items")
    assert missing.status_code == 401 and missing.headers["grantline-error"] == "grant_missing"
    from fixtures.run_grants import altered_grant

    forged = altered_grant(proxy.grant("mallory"), sub="alice")
    refused = await proxy.call("GET", "sandbox/items", forged)
    assert refused.status_code == 401 and refused.headers["grantline-error"] == "grant_invalid"
    other_tenant = proxy.grant("alice", tenant="tenant-b")
    assert (await proxy.call("GET", "sandbox/items", other_tenant)).status_code == 409  # no connection there
    assert TENANT == "tenant-a"


async def test_the_runner_helper_makes_it_one_line(vault: VaultHarness, proxy: ProxyHarness) -> None:
    import pytest

    from grantline.runner.proxy import ProxyRefused, proxy_client, proxy_url, raise_for_proxy_error

    await _connected(vault)
    grants = [proxy.grant("alice")]
    async with proxy_client(proxy.url, "sandbox", grant=lambda: grants[-1], tool="helper") as sandbox:
        created = raise_for_proxy_error(await sandbox.post("items", json={"name": "via helper"}))
        assert created.status_code == 201
        assert (await sandbox.get("/items")).json()["items"][0]["name"] == "via helper"
        limited = raise_for_proxy_error(await sandbox.get("rate_limited"))
        assert limited.status_code == 429  # the provider's answer comes back as is
    assert proxy_url("http://p:1/", "sandbox", "/items") == "http://p:1/v1/proxy/sandbox/items"
    async with proxy_client(proxy.url, "sandbox_github", grant=grants[-1]) as other:
        with pytest.raises(ProxyRefused) as refused:
            raise_for_proxy_error(await other.get("items"))
    assert refused.value.code == "forbidden" and refused.value.status == 403


async def test_head_keeps_the_providers_length(vault: VaultHarness, proxy: ProxyHarness) -> None:
    await _connected(vault)
    grant = proxy.grant("alice")
    await proxy.call("POST", "sandbox/items", grant, json={"name": "x"})
    got = await proxy.call("GET", "sandbox/items", grant)
    head = await proxy.call("HEAD", "sandbox/items", grant)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == got.headers["content-length"]


async def test_a_call_may_name_one_of_the_users_connections_and_no_one_elses(
    vault: VaultHarness, proxy: ProxyHarness
) -> None:
    alice_connection = await _connected(vault, "alice")
    bob_connection = (await vault.connect("sandbox", user="bob", scopes=["read"])).connection_id
    alice = proxy.grant("alice", run_id="run-named")
    named = await proxy.call(
        "GET", "sandbox/items", alice, headers={"Grantline-Connection": alice_connection}
    )
    assert named.status_code == 200 and named.json()["owner"] == "alice", named.text
    # Bob's connection id with Alice's grant: the vault looks only among Alice's connections.
    stolen = await proxy.call("GET", "sandbox/items", alice, headers={"Grantline-Connection": bob_connection})
    assert stolen.status_code == 409 and stolen.headers["grantline-error"] == "not_connected", stolen.text
    malformed = await proxy.call("GET", "sandbox/items", alice, headers={"Grantline-Connection": "a b/../c"})
    assert malformed.status_code == 400 and malformed.headers["grantline-error"] == "invalid_request"
