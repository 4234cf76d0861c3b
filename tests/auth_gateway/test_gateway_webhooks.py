"""Webhook ingress: 401 when unverified; verified revocation revokes once; a replay has no effect."""

from conftest import KEY_A
from gateway_support import bearer
from sqlalchemy import func, select

from grantline.auth_gateway.adapters.tables import webhook_deliveries
from grantline.common.contract import vault
from grantline.common.contract.vault_admin import WebhookVerdict


async def count(stack, table):
    async with stack.runtime.sessions() as session:
        return int((await session.execute(select(func.count()).select_from(table))).scalar_one())


async def test_unverified_webhook_is_refused_and_changes_nothing(stack):
    response = await stack.client.post("/v1/webhooks/slack", content=b'{"type":"event_callback"}')
    assert response.status_code == 401 and response.json()["code"] == "invalid_signature"
    assert await count(stack, webhook_deliveries) == 0 and stack.vault.revocations == []


async def test_verified_revocation_revokes_once_and_replay_has_no_effect(stack):
    stack.vault.connections["c1"] = vault.ConnectionInfo(
        connection_id="c1",
        tenant_id=stack.tenant_a,
        owner="user:u1",
        provider="slack",
        status="active",
        scopes=[],
    )
    body = b'{"event":{"type":"tokens_revoked"}}'
    stack.vault.webhook_verdicts[body] = WebhookVerdict(
        verified=True,
        tenant_id=stack.tenant_a,
        kind="tokens_revoked",
        delivery_id="d-1",
        revoked_tokens=True,
        connection_ids=["c1"],
    )
    first = await stack.client.post("/v1/webhooks/slack", content=body)
    assert first.status_code == 200 and first.json() == {
        "status": "accepted",
        "challenge": None,
        "revoked_connections": 1,
    }
    assert [r.reason for r in stack.vault.revocations] == ["provider"]
    listed = (await stack.client.get("/v1/connections", headers=bearer(KEY_A))).json()
    assert listed["connections"][0]["status"] == "revoked"

    replay = await stack.client.post("/v1/webhooks/slack", content=body)
    assert replay.status_code == 200 and replay.json()["status"] == "duplicate"
    assert len(stack.vault.revocations) == 1 and await count(stack, webhook_deliveries) == 1


async def test_slack_url_verification_returns_the_challenge(stack):
    body = b'{"type":"url_verification","challenge":"ch-123"}'
    stack.vault.webhook_verdicts[body] = WebhookVerdict(
        verified=True, kind="url_verification", challenge="ch-123"
    )
    response = await stack.client.post("/v1/webhooks/slack", content=body)
    assert response.status_code == 200 and response.json()["challenge"] == "ch-123"
    assert await count(stack, webhook_deliveries) == 0
