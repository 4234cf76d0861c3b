"""While Postgres or a backing service is away, the API answers 503 problems, never 500s."""

from fixtures.waiting import wait_for_async
from gateway_support import KEY_A, bearer


async def test_postgres_restart_gives_503_then_recovers(stack, postgres_server) -> None:
    postgres_server.require_restart()
    ok = await stack.client.get("/v1/providers", headers=bearer(KEY_A))
    assert ok.status_code == 200
    postgres_server.stop()
    try:
        during = await stack.client.get("/v1/connections", params={"user_id": "u1"}, headers=bearer(KEY_A))
        assert during.status_code == 503, during.text
        assert during.headers["content-type"].startswith("application/problem+json")
        assert during.json()["code"] == "service_unavailable"
    finally:
        postgres_server.start()

    async def recovered() -> bool:
        response = await stack.client.get("/v1/providers", headers=bearer(KEY_A))
        return response.status_code == 200

    await wait_for_async(recovered, timeout=30)


async def test_vault_away_gives_503(stack) -> None:
    await stack.vault.stop()
    response = await stack.client.get("/v1/connections", params={"user_id": "u1"}, headers=bearer(KEY_A))
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "service_unavailable"
