"""Webhook ingress with the vault's real verification: Slack v0, GitHub X-Hub-Signature-256, Google RISC.

Each scheme accepts a valid request (a token revocation revokes the matching connection through the
vault and emits `connections.webhook` and `connections.revoked` with reason `provider`), refuses a
bad signature, a stale timestamp (where the scheme signs one) and answers a replay as a duplicate
that changes nothing; a refused request gets 401 and changes nothing.
"""

import json
import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fixtures.waiting import wait_for_async
from gateway_flow import (
    connect_through_vault,
    count,
    github_revocation_poster,
    setup_app,
    status_of,
    stream_events,
)
from gateway_support import CLIENT_ID, KEY_A, KEY_B, bearer
from jwt.algorithms import RSAAlgorithm
from sqlalchemy import text

from grantline.auth_gateway.adapters.tables import webhook_deliveries
from grantline.providers.webhooks import github_signature, slack_signature

SLACK_SECRET = "slack-signing-secret-tenant-a"
GITHUB_SECRET = "github-hook-secret-tenant-a"
RISC = "https://schemas.openid.net/secevent/oauth/event-type/tokens-revoked"


@pytest.fixture(scope="module")
def risc_keys():
    """Google's signing key (published in the test JWKS) and an impostor's key with the same kid."""
    return [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2)]


async def assert_refused(stack, response, connection_id: str, *, risc_err: str | None = None) -> None:
    """Refused and nothing changed: 401, or for a RISC token the 400 with `err` RFC 8935 asks for."""
    if risc_err is None:
        assert response.status_code == 401, response.text
        assert response.json()["code"] == "invalid_signature"
    else:
        assert response.status_code == 400, response.text
        assert (response.json()["code"], response.json()["err"]) == ("invalid_token", risc_err)
    assert await status_of(stack, connection_id) == "active"
    assert await count(stack, webhook_deliveries) == 0


async def revoked_by_provider(stack, connection_id: str) -> list[dict]:
    """Wait for the webhook and revocation events of one connection; return them."""

    async def found():
        events = await stream_events(stack)
        revoked = [
            e for e in events if e["type"] == "connections.revoked" and e["connection_id"] == connection_id
        ]
        webhook = [
            e for e in events if e["type"] == "connections.webhook" and connection_id in e["connection_ids"]
        ]
        return (revoked + webhook) if revoked and webhook else None

    events = await wait_for_async(found)
    assert [e["reason"] for e in events if e["type"] == "connections.revoked"] == ["provider"]
    return events


async def accepted_then_replayed(stack, send, connection_id: str) -> None:
    first = await send()
    assert first.status_code == 200, first.text
    assert first.json() == {"status": "accepted", "challenge": None, "revoked_connections": 1}
    assert await status_of(stack, connection_id) == "revoked"
    events = await revoked_by_provider(stack, connection_id)
    assert all(e["tenant_id"] == stack.tenant_a for e in events)

    replay = await send()
    assert replay.status_code == 200 and replay.json()["status"] == "duplicate"
    assert await count(stack, webhook_deliveries) == 1
    again = [e for e in await stream_events(stack) if e["type"] == "connections.webhook"]
    assert len(again) == 1


async def test_slack_v0_signature_window_and_replay(stack):
    await setup_app(stack, provider="slack", webhook_secret=SLACK_SECRET)
    await setup_app(stack, key=KEY_B, provider="slack", webhook_secret="slack-secret-of-tenant-b")
    connection = await connect_through_vault(stack, stack.tenant_a, "slack", "slack", "alice")
    body = json.dumps(
        {
            "type": "event_callback",
            "event_id": "Ev0001",
            "team_id": "T1",
            "event": {"type": "tokens_revoked", "tokens": {"oauth": [connection.account], "bot": []}},
        }
    ).encode()

    def post(timestamp: int, signature: str | None = None):
        headers = {
            "content-type": "application/json",
            "x-slack-request-timestamp": str(timestamp),
            "x-slack-signature": signature or slack_signature(SLACK_SECRET, str(timestamp), body),
        }
        return stack.client.post("/v1/webhooks/slack", content=body, headers=headers)

    now = int(time.time())
    forged = "v0=" + slack_signature("not-the-secret", str(now), body).split("=", 1)[1]
    await assert_refused(stack, await post(now, forged), connection.connection_id)
    await assert_refused(stack, await post(now - 6 * 60), connection.connection_id)  # signed, but stale
    await assert_refused(stack, await post(now + 6 * 60), connection.connection_id)
    await assert_refused(
        stack, await stack.client.post("/v1/webhooks/slack", content=body), connection.connection_id
    )
    await accepted_then_replayed(stack, lambda: post(now), connection.connection_id)


async def test_slack_url_verification_returns_the_challenge(stack):
    await setup_app(stack, provider="slack", webhook_secret=SLACK_SECRET)
    body = b'{"type":"url_verification","challenge":"ch-123"}'
    now = str(int(time.time()))
    response = await stack.client.post(
        "/v1/webhooks/slack",
        content=body,
        headers={
            "x-slack-request-timestamp": now,
            "x-slack-signature": slack_signature(SLACK_SECRET, now, body),
        },
    )
    assert response.status_code == 200 and response.json()["challenge"] == "ch-123"
    assert await count(stack, webhook_deliveries) == 0


async def test_github_hub_signature_and_delivery_de_duplication(stack):
    await setup_app(stack, provider="github", webhook_secret=GITHUB_SECRET)
    connection = await connect_through_vault(stack, stack.tenant_a, "github", "github", "octocat")
    body = json.dumps(
        {"action": "revoked", "sender": {"login": "octocat", "id": int(connection.account or 0)}}
    ).encode()

    def post(signature: str, delivery: str = "72d3162e-cc78-11e3-81ab-4c9367dc0958"):
        headers = {
            "content-type": "application/json",
            "x-github-event": "github_app_authorization",
            "x-github-delivery": delivery,
            "x-hub-signature-256": signature,
        }
        return stack.client.post("/v1/webhooks/github", content=body, headers=headers)

    await assert_refused(stack, await post(github_signature("wrong", body)), connection.connection_id)
    await assert_refused(stack, await post("sha1=" + "0" * 40), connection.connection_id)
    # GitHub signs no timestamp: the delivery id is what refuses a replay.
    await accepted_then_replayed(
        stack, lambda: post(github_signature(GITHUB_SECRET, body)), connection.connection_id
    )


def risc_token(
    key,
    *,
    sub: str,
    jti: str | None = None,
    iat: float | None = None,
    aud: str = CLIENT_ID,
    kid: str = "risc-1",
) -> bytes:
    claims = {
        "iss": "https://accounts.google.com/",
        "aud": aud,
        "iat": int(iat if iat is not None else time.time()),
        "jti": jti or uuid.uuid4().hex,
        "events": {
            RISC: {"subject": {"subject_type": "iss_sub", "iss": "https://accounts.google.com/", "sub": sub}}
        },
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid}).encode()


async def test_google_risc_token_jwks_audience_and_jti_de_duplication(stack, risc_keys):
    google, impostor = risc_keys
    jwk = json.loads(RSAAlgorithm.to_jwk(google.public_key()))
    stack.jwks["keys"] = [{**jwk, "kid": "risc-1", "alg": "RS256", "use": "sig"}]
    await setup_app(stack, provider="google")
    connection = await connect_through_vault(stack, stack.tenant_a, "google", "google", "gina")
    assert connection.account == "gina"

    def post(token: bytes):
        return stack.client.post(
            "/v1/webhooks/google", content=token, headers={"content-type": "application/secevent+jwt"}
        )

    cid = connection.connection_id
    await assert_refused(stack, await post(risc_token(impostor, sub="gina")), cid, risc_err="invalid_request")
    stale = risc_token(google, sub="gina", iat=time.time() - 2 * 86400)
    await assert_refused(stack, await post(stale), cid, risc_err="invalid_request")
    foreign = risc_token(google, sub="gina", aud="someone-elses-client")
    await assert_refused(stack, await post(foreign), cid, risc_err="invalid_audience")
    unknown = risc_token(impostor, sub="gina", kid="not-published")
    await assert_refused(stack, await post(unknown), cid, risc_err="invalid_key")
    token = risc_token(google, sub="gina", jti="risc-jti-1")
    await accepted_then_replayed(stack, lambda: post(token), cid)


async def test_google_risc_on_the_shared_url_revokes_even_when_another_tenant_claims_the_client_id(
    stack, risc_keys
):
    # A client id is public. A hostile tenant registers a Google app with its victim's client id (it
    # has not the secret, so it can make no connection through it), and makes sure its app is the one
    # tried first on the per-provider URL: the victim's users' RISC revocations must still land.
    google, _ = risc_keys
    jwk = json.loads(RSAAlgorithm.to_jwk(google.public_key()))
    stack.jwks["keys"] = [{**jwk, "kid": "risc-1", "alg": "RS256", "use": "sig"}]
    hostile_key, victim, victim_key = (
        (KEY_A, stack.tenant_b, KEY_B) if stack.tenant_a < stack.tenant_b else (KEY_B, stack.tenant_a, KEY_A)
    )
    await setup_app(stack, key=victim_key, provider="google")
    await setup_app(stack, key=hostile_key, provider="google", client_secret="not-the-real-secret")
    connection = await connect_through_vault(stack, victim, "google", "google", "gina")

    response = await stack.client.post(
        "/v1/webhooks/google",
        content=risc_token(google, sub="gina"),
        headers={"content-type": "application/secevent+jwt"},
    )
    assert response.json() == {"status": "accepted", "challenge": None, "revoked_connections": 1}
    assert await status_of(stack, connection.connection_id, victim_key) == "revoked"


async def github_apps_of_both_tenants(stack) -> tuple[dict, dict]:
    """Tenant A's and tenant B's GitHub apps (as the API shows them), each with its webhook secret."""
    await setup_app(stack, provider="github", webhook_secret=GITHUB_SECRET)
    await setup_app(stack, key=KEY_B, provider="github", webhook_secret="github-hook-secret-tenant-b")
    mine = (await stack.client.get("/v1/provider-apps/github", headers=bearer(KEY_A))).json()
    theirs = (await stack.client.get("/v1/provider-apps/github", headers=bearer(KEY_B))).json()
    return mine, theirs


async def test_each_provider_app_has_its_own_webhook_url_checked_against_its_secret_only(stack):
    app, other = await github_apps_of_both_tenants(stack)
    assert app["webhook_path"] == f"/v1/webhooks/github/{app['id']}" != other["webhook_path"]
    connection = await connect_through_vault(stack, stack.tenant_a, "github", "github", "octocat")
    post = github_revocation_poster(stack, connection)

    # Tenant A's delivery at tenant B's URL (or an unknown app's) is not tried against A's secret.
    await assert_refused(stack, await post(other["webhook_path"], GITHUB_SECRET), connection.connection_id)
    await assert_refused(
        stack, await post("/v1/webhooks/github/pa_unknown", GITHUB_SECRET), connection.connection_id
    )
    accepted = await post(app["webhook_path"], GITHUB_SECRET)
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted", accepted.text
    assert await status_of(stack, connection.connection_id) == "revoked"
    # GitHub does not sign its delivery id: the same signed body under a new id is still a replay.
    replayed = await post(app["webhook_path"], GITHUB_SECRET)
    assert replayed.status_code == 200 and replayed.json()["status"] == "duplicate", replayed.text
    webhooks = [e for e in await stream_events(stack) if e["type"] == "connections.webhook"]
    assert len(webhooks) == 1


async def test_one_tenants_delivery_does_not_pass_for_a_replay_of_anothers(stack):
    # GitHub's authorization-revoked body names only the user, so two tenants' apps are sent the same
    # bytes. A hostile tenant A signs that body with its own secret and posts it first, hoping tenant
    # B's genuine delivery is then taken for a replay and B's connection is left as it is.
    mine, theirs = await github_apps_of_both_tenants(stack)
    victim = await connect_through_vault(stack, stack.tenant_b, "github", "github", "octocat")
    post = github_revocation_poster(stack, victim)

    forged = await post(mine["webhook_path"], GITHUB_SECRET)
    # Accepted for tenant A, where it names no connection: B's connection is out of A's reach.
    assert forged.json() == {"status": "accepted", "challenge": None, "revoked_connections": 0}
    assert await status_of(stack, victim.connection_id, KEY_B) == "active"
    genuine = await post(theirs["webhook_path"], "github-hook-secret-tenant-b")
    assert genuine.json() == {"status": "accepted", "challenge": None, "revoked_connections": 1}
    assert await status_of(stack, victim.connection_id, KEY_B) == "revoked"
    # Each app still refuses its own replay.
    replayed = await post(theirs["webhook_path"], "github-hook-secret-tenant-b")
    assert replayed.json()["status"] == "duplicate"


async def test_google_risc_refetches_the_jwks_once_on_an_unknown_kid(stack, risc_keys):
    google, rotated = risc_keys
    published = [{**json.loads(RSAAlgorithm.to_jwk(google.public_key())), "kid": "risc-1", "alg": "RS256"}]
    stack.jwks["keys"] = published
    await setup_app(stack, provider="google")
    connection = await connect_through_vault(stack, stack.tenant_a, "google", "google", "gina")

    def post(token: bytes):
        return stack.client.post(
            "/v1/webhooks/google", content=token, headers={"content-type": "application/secevent+jwt"}
        )

    # The vault caches the JWKS; a token of another user fills the cache with only `risc-1`.
    first = await post(risc_token(google, sub="someone-else"))
    assert first.status_code == 200, first.text
    # Google rotates: a new key `risc-2` is published after the vault's fetch.
    new_key = json.loads(RSAAlgorithm.to_jwk(rotated.public_key()))
    stack.jwks["keys"] = [*published, {**new_key, "kid": "risc-2", "alg": "RS256"}]
    accepted = await post(risc_token(rotated, sub="gina", kid="risc-2"))
    assert accepted.status_code == 200 and accepted.json()["status"] == "accepted", accepted.text
    assert await status_of(stack, connection.connection_id) == "revoked"


async def test_google_risc_finds_the_connection_through_its_account_digest(stack, risc_keys):
    """The vault looks accounts up by a keyed digest stored with the connection (an index), not by
    the plaintext column and not by unsealing: a row whose `account` column was rewritten is still
    found by its digest, and a row from before digests (none stored) by its account."""
    google, _ = risc_keys
    jwk = json.loads(RSAAlgorithm.to_jwk(google.public_key()))
    stack.jwks["keys"] = [{**jwk, "kid": "risc-1", "alg": "RS256", "use": "sig"}]
    await setup_app(stack, provider="google")
    gina = await connect_through_vault(stack, stack.tenant_a, "google", "google", "gina")
    hugo = await connect_through_vault(stack, stack.tenant_a, "google", "google", "hugo")
    async with stack.vault.transaction() as session:
        digests = dict(
            (await session.execute(text("SELECT account, account_digest FROM vault.connections"))).all()
        )
        assert len(digests) == 2 and all(len(bytes(d)) == 32 for d in digests.values())
        assert b"gina" not in bytes(digests["gina"])
        await session.execute(
            text("UPDATE vault.connections SET account = 'rewritten' WHERE id = :id"),
            {"id": gina.connection_id},
        )
        await session.execute(
            text("UPDATE vault.connections SET account_digest = NULL WHERE id = :id"),
            {"id": hugo.connection_id},
        )

    def post(token: bytes):
        return stack.client.post(
            "/v1/webhooks/google", content=token, headers={"content-type": "application/secevent+jwt"}
        )

    for connection, sub in ((gina, "gina"), (hugo, "hugo")):
        response = await post(risc_token(google, sub=sub))
        assert response.status_code == 200, response.text
        assert response.json()["revoked_connections"] == 1
        assert await status_of(stack, connection.connection_id) == "revoked"
