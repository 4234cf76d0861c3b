"""The connection lifecycle on a three-node NATS JetStream cluster, one node killed at random points.

Out of the default run: set ``GRANTLINE_TEST_CLUSTER=1`` (docs/operations.md, "Testing failures").
`grantline dev` runs every service as its own process against three `nats-server` processes clustered
on free ports, with every stream declared at R3 by `grantline migrate` (GRANTLINE_NATS_STREAM_REPLICAS).
During the grant, the admission, the background refresh and the revocation a random node is SIGKILLed
and started again after a random delay. The walk must still complete, and the streams (the record of
what was said) must hold each event exactly once: nothing lost, nothing said twice.

The runner's own node is never the one killed: its revocation and admission listeners are core
subscriptions, which miss what is published while they reconnect (issue 20 item 2, the durable runner
client). The services' nodes are fair game.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import nats
import pytest
from cluster_faults import NodeFaults
from e2e_dev_stack import DevStackProcess
from e2e_leak_scan import read_streams
from fixtures.infra import free_port, server_directory
from fixtures.waiting import wait_for_async
from test_e2e_connection_lifecycle import (
    APP_ID,
    EVENT_TIMEOUT,
    PROVIDER,
    TOKEN_LIFETIME_SECONDS,
    USER,
    Walk,
    _connection,
    _events,
    _grantline,
    _query,
    _refresh_grants,
)

from grantline.contract import RunConnectionRevoked, RunHeld
from grantline.contract.errors import ErrorCode
from grantline.devstack.embedded_nats_cluster import EmbeddedNatsCluster
from grantline.runner import ResolveError, RunnerClient
from grantline.runner_auth.adapters.nats_jwt import new_account_seed

# The refresher renews sandbox tokens 3 s before expiry, polling often; the vault never refreshes inline.
CLUSTER_ENVIRONMENT = {
    "GRANTLINE_REFRESH_MARGIN_SECONDS": "0",
    "GRANTLINE_REFRESH_PROVIDER_MARGINS": '{"sandbox": 3}',
    "GRANTLINE_REFRESH_JITTER_SECONDS": "0",
    "GRANTLINE_REFRESH_POLL_SECONDS": "0.2",
}

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.cluster,
    pytest.mark.timeout(600),
    pytest.mark.skipif(
        os.environ.get("GRANTLINE_TEST_CLUSTER") != "1", reason="cluster test: set GRANTLINE_TEST_CLUSTER=1"
    ),
]


@pytest.fixture(scope="module")
def cluster_stack() -> Iterator[tuple[EmbeddedNatsCluster, DevStackProcess]]:
    with server_directory("cluster") as root:
        cluster = EmbeddedNatsCluster(root / "nats")
        cluster.start()
        # NATS here runs without the permission file (`grantline dev` writes it only for its own
        # embedded server), so runner-auth gets an issuer seed of its own.
        seed = root / "issuer.seed"
        seed.write_text(new_account_seed())
        seed.chmod(0o600)
        stack = DevStackProcess(
            data_dir=root / "grantline",
            api_port=free_port(),
            extra_env={
                **CLUSTER_ENVIRONMENT,
                "GRANTLINE_NATS_URL": cluster.url,
                "GRANTLINE_NATS_STREAM_REPLICAS": "3",
                "GRANTLINE_RUNNER_AUTH_ISSUER_SEED_FILE": str(seed),
            },
        )
        try:
            stack.start()
            yield cluster, stack
        finally:
            stack.stop()
            print(f"grantline dev output:\n{stack.output()}\nwarnings and errors:\n{stack.problems()}")
            cluster.stop()


@pytest.fixture
async def cluster_runner(
    cluster_stack: tuple[EmbeddedNatsCluster, DevStackProcess],
) -> AsyncIterator[tuple[RunnerClient, nats.NATS]]:
    cluster, _ = cluster_stack
    nc = await nats.connect(cluster.url.split(","), connect_timeout=5, max_reconnect_attempts=-1)
    client = RunnerClient(nc, timeout=EVENT_TIMEOUT)
    try:
        yield client, nc
    finally:
        await client.close()
        await nc.close()


async def test_cluster_lifecycle_with_a_node_killed_at_each_step(
    cluster_stack: tuple[EmbeddedNatsCluster, DevStackProcess],
    cluster_runner: tuple[RunnerClient, nats.NATS],
) -> None:
    cluster, stack = cluster_stack
    runner, runner_nc = cluster_runner
    faults = NodeFaults(cluster)

    def spare() -> set[int]:
        node = faults.node_of(str(runner_nc.connected_url.netloc if runner_nc.connected_url else ""))
        return {node} if node is not None else set()

    # `grantline migrate` (run by `grantline dev`) declared every stream with 3 replicas.
    for stream in ("CONNECTIONS", "RUNS", "AUDIT"):
        assert (await runner_nc.jetstream().stream_info(stream)).config.num_replicas == 3, stream
    walk = Walk(stack)
    info = stack.info
    tenant_id = str(info["tenant_id"])
    run_id = f"run-{uuid.uuid4()}"
    return_to = "http://127.0.0.1:3000/e2e/done"
    async with walk.api() as api, walk.anonymous() as browser, walk.sandbox() as sandbox:
        at_provider = httpx.AsyncClient(timeout=30)
        await sandbox.post(
            "/_sandbox/clients", json={"client_id": walk.client_id, "client_secret": walk.client_secret}
        )
        await sandbox.put(
            "/_sandbox/settings", json={"canary": walk.canary, "expires_in": TOKEN_LIFETIME_SECONDS}
        )
        app = await api.put(
            f"/v1/provider-apps/{PROVIDER}",
            json={"client_id": walk.client_id, "client_secret": walk.client_secret, "scopes": ["read"]},
        )
        assert app.status_code == 200, app.text
        held = await runner.request_run(tenant_id, run_id, USER, APP_ID, requirements=[PROVIDER])
        assert isinstance(held, RunHeld), held

        # The grant: a node dies between the provider's redirect and the callback.
        initiated = await api.post(
            "/v1/connections/initiate", json={"user_id": USER, "provider": PROVIDER, "return_to": return_to}
        )
        assert initiated.status_code == 200, initiated.text
        connection_id = initiated.json()["connection_id"]
        callback_url = (await at_provider.get(initiated.json()["authorize_url"])).headers["location"]
        with faults.node_down_during("grant", spare=spare()):
            landed = await browser.get(callback_url, follow_redirects=False)
            assert landed.status_code == 303, landed.text
            assert _query(landed.headers["location"])["status"] == "connected"

        # The admission of the held run the grant satisfies.
        with faults.node_down_during("admission", spare=spare()):
            admitted = await runner.wait_until_admitted(run_id, timeout=EVENT_TIMEOUT)
            assert admitted.resumed is True
            first = await runner.resolve(run_id, PROVIDER, tool="list_messages")
        walk.issued.add(first.access_token.get_secret_value())

        # The background refresh (the token lives 6 s; the refresher renews it 3 s early).
        grants_before = await _refresh_grants(sandbox)
        refreshed_before = (await _connection(api, connection_id))["last_refreshed_at"]
        with faults.node_down_during("refresh", spare=spare()):

            async def renewed() -> bool:
                connection = await _connection(api, connection_id)
                return connection["last_refreshed_at"] not in (None, refreshed_before)

            await wait_for_async(renewed, timeout=EVENT_TIMEOUT, interval=0.25)
        assert await _refresh_grants(sandbox) > grants_before
        second = await runner.resolve(run_id, PROVIDER, tool="send_message")
        assert second.access_token.get_secret_value() != first.access_token.get_secret_value()

        # The revocation: the in-flight run is told, and its next resolve is refused.
        async def first_revocation() -> RunConnectionRevoked:
            async for revocation in runner.revocations(run_id):
                return revocation
            raise AssertionError("the run finished before hearing of the revocation")

        told = asyncio.create_task(first_revocation())
        with faults.node_down_during("revocation", spare=spare()):
            revoked = await api.delete(f"/v1/connections/{connection_id}")
            assert revoked.status_code == 200, revoked.text
            revocation = await asyncio.wait_for(told, EVENT_TIMEOUT)
        assert revocation.connection_id == connection_id
        with pytest.raises(ResolveError) as refused:
            await runner.resolve(run_id, PROVIDER, tool="after_revoke")
        assert refused.value.code == ErrorCode.REVOKED
        await runner.finish(run_id)
        await at_provider.aclose()

        async def audited() -> bool:
            response = await api.get("/v1/audit", params={"user_id": USER, "limit": 500})
            actions = [item["record"]["action"] for item in response.json()["records"]]
            return "connection.revoked" in actions and actions.count("token.resolved") >= 3

        await wait_for_async(audited, timeout=EVENT_TIMEOUT, interval=0.25)

    print("faults:", [(f.step, f"n{f.node + 1}", f.down_for, round(f.back_after, 2)) for f in faults.log])
    assert [f.step for f in faults.log] == ["grant", "admission", "refresh", "revocation"]

    # Nothing lost, nothing said twice: each event once on its R3 stream.
    streams = await read_streams(cluster.url.split(","), None, None, "_INBOX")  # type: ignore[arg-type]
    said = [e["type"] for e in _events(streams, "RUNS") if e.get("run_id") == run_id]
    assert said.count("runs.held") == 1 and said.count("runs.admitted") == 1, said
    assert said.count("runs.connection_revoked") == 1, said
    lived = [e["type"] for e in _events(streams, "CONNECTIONS") if e.get("connection_id") == connection_id]
    assert lived.count("connections.granted") == 1 and lived.count("connections.revoked") == 1, lived
    assert "connections.refreshed" in lived, lived
    verified = _grantline("audit", "verify", tenant_id, database_url=str(info["database_url"]))
    assert verified.returncode == 0, verified.stdout + verified.stderr
