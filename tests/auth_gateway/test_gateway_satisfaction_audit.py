"""`POST /v1/satisfaction/check` and `GET /v1/audit` with the real satisfaction and audit services.

The satisfaction service learns of the connection only from the vault's real `connections.granted`;
the audit service only from the records the gateway and the vault emit through their outboxes.
"""

from fixtures.waiting import wait_for_async
from gateway_flow import connect, setup_app
from gateway_support import KEY_A, KEY_B, bearer

NEEDS = [
    "sandbox",
    {"type": "specific", "id": "sandbox_github", "is_required": False, "label": "Code (optional)"},
]


async def check(stack, user, key=KEY_A, **extra):
    return await stack.client.post(
        "/v1/satisfaction/check", headers=bearer(key), json={"user_id": user, "requirements": NEEDS, **extra}
    )


async def test_satisfaction_check_is_422_until_the_vault_grants_then_200(full_stack):
    await setup_app(full_stack)
    missing = await check(full_stack, "sam")
    assert missing.status_code == 422, missing.text
    problem = missing.json()
    assert problem["code"] == "requirements_not_met"
    assert missing.headers["content-type"].startswith("application/problem+json")
    assert [m["id"] for m in problem["missing"]] == ["sandbox"]  # the optional one is not "missing"
    assert "sandbox" in problem["detail"]

    as_test = await check(full_stack, "sam", is_test=True)
    assert as_test.status_code == 200 and as_test.json()["is_satisfied"] is False

    await connect(full_stack, "sam")

    async def satisfied():
        response = await check(full_stack, "sam")
        return response if response.status_code == 200 else None

    report = (await wait_for_async(satisfied)).json()
    assert report["is_satisfied"] and report["missing"] == []
    (sandbox,) = [r for r in report["requirements"] if r["id"] == "sandbox"]
    assert sandbox["is_satisfied"] and sandbox["satisfied_by"]
    assert "sbx_" not in str(report)
    # Another user of the tenant, and the same user id in another tenant, are still missing it.
    assert (await check(full_stack, "someone-else")).status_code == 422
    assert (await check(full_stack, "sam", key=KEY_B)).status_code == 422


async def test_audit_lists_the_flow_for_its_tenant_only(full_stack):
    await setup_app(full_stack)
    started = await connect(full_stack, "ada")
    connection_id = started["connection_id"]

    async def recorded():
        response = await full_stack.client.get(
            f"/v1/audit?connection_id={connection_id}", headers=bearer(KEY_A)
        )
        assert response.status_code == 200, response.text
        actions = {r["record"]["action"] for r in response.json()["records"]}
        return response.json() if {"connection.initiated", "connection.granted"} <= actions else None

    page = await wait_for_async(recorded)
    assert all(r["record"]["tenant_id"] == full_stack.tenant_a for r in page["records"])
    assert all(r["record"]["connection_id"] == connection_id for r in page["records"])
    assert "sbx_" not in str(page)

    only = await full_stack.client.get("/v1/audit?action=connection.initiated&limit=1", headers=bearer(KEY_A))
    assert only.status_code == 200
    assert [r["record"]["action"] for r in only.json()["records"]] == ["connection.initiated"]

    other = await full_stack.client.get(f"/v1/audit?connection_id={connection_id}", headers=bearer(KEY_B))
    assert other.status_code == 200 and other.json()["records"] == []
    bad = await full_stack.client.get("/v1/audit?action=DROP TABLE", headers=bearer(KEY_A))
    assert bad.status_code == 422 and bad.json()["code"] == "validation_error"


async def test_satisfaction_check_per_stage_and_optional_skills(full_stack):
    await setup_app(full_stack)
    body = {
        "user_id": "stan",
        "stages": [{"id": "plan", "requirements": []}, {"id": "ship", "requirements": ["sandbox"]}],
        "skills": [{"id": "extra", "required": False, "requirements": ["sandbox_github"]}],
    }
    plan = await full_stack.client.post(
        "/v1/satisfaction/check", headers=bearer(KEY_A), json={**body, "stage": "plan"}
    )
    assert plan.status_code == 200, plan.text
    assert [(r["id"], r["is_required"]) for r in plan.json()["requirements"]] == [("sandbox_github", False)]
    ship = await full_stack.client.post(
        "/v1/satisfaction/check", headers=bearer(KEY_A), json={**body, "stage": "ship"}
    )
    assert ship.status_code == 422 and [m["id"] for m in ship.json()["missing"]] == ["sandbox"]
    unknown = await full_stack.client.post(
        "/v1/satisfaction/check", headers=bearer(KEY_A), json={**body, "stage": "deploy"}
    )
    assert unknown.status_code == 422 and "deploy" in unknown.json()["detail"]
