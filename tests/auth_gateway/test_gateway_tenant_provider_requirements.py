"""Issue 18 item 12 end to end: a provider tenant A defines with `POST /v1/providers` is kept by the
vault, announced to satisfaction, and then satisfies A's checks and releases A's held run once the
user connects it through the gateway; tenant B, with no such provider, is never satisfied by it."""

from fixtures.waiting import wait_for_async
from gateway_flow import connect, connect_page, setup_app, tenant_provider_definition
from gateway_support import KEY_A, KEY_B, bearer
from nats.aio.client import Client

from grantline.contract import RunAdmitted, RunHeld
from grantline.contract.run_grants import unverified_claims
from grantline.runner import RunnerClient

PROVIDER = "acme_oauth"


def _definition(sandbox_url: str) -> dict:
    return tenant_provider_definition(
        sandbox_url,
        PROVIDER,
        category="developer_tools",
        apps=[{"id": "acme_tracker", "name": "Acme tracker", "category": "project_management"}],
    )


async def _check(stack, user: str, requirements: list, key: str = KEY_A):
    return await stack.client.post(
        "/v1/satisfaction/check", headers=bearer(key), json={"user_id": user, "requirements": requirements}
    )


async def test_a_tenant_defined_provider_is_first_class_for_its_tenant_only(
    full_stack, nats_client: Client
) -> None:
    stack = full_stack
    defined = await stack.client.post(
        "/v1/providers", headers=bearer(KEY_A), json=_definition(stack.sandbox_url)
    )
    assert defined.status_code == 201, defined.text
    await setup_app(stack, provider=PROVIDER)
    needs = [PROVIDER, {"type": "category", "id": "project_management"}]
    # The connect pages offer it to tenant A's users, and not to tenant B's.
    assert f"/connect/authorize/{PROVIDER}" in await connect_page(stack, "dana")
    await setup_app(stack, key=KEY_B)
    assert f"/connect/authorize/{PROVIDER}" not in await connect_page(stack, "dana", key=KEY_B)

    async def known_but_missing():
        response = await _check(stack, "dana", needs)
        problem = response.json()
        return response.status_code == 422 and problem["missing"][0]["available"] == [PROVIDER]

    # The vault's announcement reaches satisfaction: the provider is known (available), not connected.
    await wait_for_async(known_but_missing, timeout=15)
    runner = RunnerClient(nats_client, timeout=10)
    held = await runner.request_run(
        stack.tenant_a, "r-acme", "dana", "app-1", ["acme_tracker"], trigger="api"
    )
    assert isinstance(held, RunHeld) and "acme_tracker" in held.message

    await connect(stack, "dana", provider=PROVIDER)
    admitted = await runner.wait_until_admitted("r-acme")
    assert isinstance(admitted, RunAdmitted) and admitted.resumed
    assert PROVIDER in unverified_claims(admitted.grant)["prv"]
    report = await _check(stack, "dana", needs)
    assert report.status_code == 200, report.text
    assert report.json()["requirements"][1]["satisfied_by"] == ["acme_tracker"]

    # Tenant B never defined it: the same user id there is missing it, and it is not even available.
    other = await _check(stack, "dana", needs, key=KEY_B)
    assert other.status_code == 422
    assert other.json()["missing"][0]["available"] == []
    b_run = await runner.request_run(stack.tenant_b, "r-b", "dana", "app-1", [PROVIDER], trigger="api")
    assert isinstance(b_run, RunHeld)
    await runner.close()
