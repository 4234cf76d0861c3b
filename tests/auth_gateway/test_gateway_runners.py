"""`/v1/runners`: a tenant creates, lists and revokes its own runner identities through the gateway
(forwarded to runner-auth over NATS); the secret is returned once and never listed."""

from gateway_support import KEY_A, KEY_B, bearer, runner_auth_runtime, started


async def test_tenant_manages_its_own_runners(stack, nats_url, database_url) -> None:
    async with started(runner_auth_runtime(nats_url, database_url)):
        created = await stack.client.post("/v1/runners", json={"name": "ci"}, headers=bearer(KEY_A))
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["tenants"] == [stack.tenant_a] and body["name"] == "ci"
        assert body["secret"].startswith("rns_") and body["inbox_prefix"] == f"_INBOX.{body['runner_id']}"
        other = (await stack.client.post("/v1/runners", json={}, headers=bearer(KEY_B))).json()

        listed = await stack.client.get("/v1/runners", headers=bearer(KEY_A))
        assert listed.status_code == 200
        assert [r["runner_id"] for r in listed.json()["runners"]] == [body["runner_id"]]
        assert body["secret"] not in listed.text and "secret" not in listed.text

        # Another tenant's runner looks like a missing one.
        refused = await stack.client.delete(f"/v1/runners/{other['runner_id']}", headers=bearer(KEY_A))
        assert refused.status_code == 404, refused.text
        revoked = await stack.client.delete(f"/v1/runners/{body['runner_id']}", headers=bearer(KEY_A))
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]
        assert (await stack.client.get("/v1/runners", headers=bearer(KEY_A))).json()["runners"] == []
        everything = await stack.client.get("/v1/runners?include_revoked=true", headers=bearer(KEY_A))
        assert [r["runner_id"] for r in everything.json()["runners"]] == [body["runner_id"]]
        # The tenant comes from the key; the body cannot name another one.
        sneaky = await stack.client.post(
            "/v1/runners", json={"tenant_id": stack.tenant_b}, headers=bearer(KEY_A)
        )
        assert sneaky.status_code == 422
        assert (
            await stack.client.delete("/v1/runners/not-a-runner", headers=bearer(KEY_A))
        ).status_code == 422
        assert (await stack.client.get("/v1/runners")).status_code == 401


async def test_runner_routes_answer_503_without_runner_auth(stack) -> None:
    response = await stack.client.get("/v1/runners", headers=bearer(KEY_A))
    assert response.status_code == 503, response.text
