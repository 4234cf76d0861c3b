"""Webhook verification: Slack v0 signing, GitHub X-Hub-Signature-256, Google RISC SETs."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm
from pydantic import SecretStr

from grantline.providers.webhooks import (
    WebhookKind,
    WebhookRejection,
    WebhookVerificationError,
    github_signature,
    slack_signature,
    verify_github_webhook,
    verify_google_risc_webhook,
    verify_slack_webhook,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
GITHUB_SECRET = "It's a Secret to Everybody"


def reason_of(excinfo: pytest.ExceptionInfo[WebhookVerificationError]) -> WebhookRejection:
    return excinfo.value.reason


# --- Slack -----------------------------------------------------------------------------------


def slack_request(
    payload: dict[str, Any], *, at: datetime = NOW, secret: str = SLACK_SECRET
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    timestamp = str(int(at.timestamp()))
    return body, {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": slack_signature(secret, timestamp, body),
        "Content-Type": "application/json",
    }


TOKENS_REVOKED = {
    "token": "XXYYZZ",
    "team_id": "T0001",
    "api_app_id": "A0001",
    "event": {"type": "tokens_revoked", "tokens": {"oauth": ["U0001"], "bot": ["U0BOT"]}},
    "type": "event_callback",
    "event_id": "Ev0001",
    "event_time": 1740830000,
}


def test_slack_tokens_revoked_is_accepted_and_lists_the_user_ids() -> None:
    body, headers = slack_request(TOKENS_REVOKED)
    hook = verify_slack_webhook(body, headers, SLACK_SECRET, now=NOW)
    assert hook.provider == "slack"
    assert hook.kind is WebhookKind.TOKENS_REVOKED
    assert hook.revoked_tokens is True
    assert hook.accounts == ("U0001", "U0BOT")
    assert hook.account is None  # several affected users: no single account
    assert hook.workspace == "T0001"
    assert hook.delivery_id == "Ev0001"
    assert hook.event_type == "tokens_revoked"


def test_slack_tokens_revoked_for_one_user_sets_account() -> None:
    payload = {**TOKENS_REVOKED, "event": {"type": "tokens_revoked", "tokens": {"oauth": ["U0001"]}}}
    body, headers = slack_request(payload)
    hook = verify_slack_webhook(body, headers, SLACK_SECRET, now=NOW)
    assert hook.account == "U0001"
    assert hook.accounts == ("U0001",)


def test_slack_app_uninstalled_revokes_the_workspace() -> None:
    payload = {**TOKENS_REVOKED, "event": {"type": "app_uninstalled"}, "event_id": "Ev0002"}
    body, headers = slack_request(payload)
    hook = verify_slack_webhook(body, headers, SLACK_SECRET, now=NOW)
    assert hook.kind is WebhookKind.APP_UNINSTALLED
    assert hook.revoked_tokens is True
    assert hook.workspace == "T0001"
    assert hook.account is None


def test_slack_url_verification_returns_the_challenge() -> None:
    body, headers = slack_request({"token": "x", "challenge": "3eZbrw1aBm2", "type": "url_verification"})
    hook = verify_slack_webhook(body, headers, SLACK_SECRET, now=NOW)
    assert hook.kind is WebhookKind.URL_VERIFICATION
    assert hook.challenge == "3eZbrw1aBm2"
    assert hook.revoked_tokens is False


def test_slack_other_event_is_verified_but_not_acted_on() -> None:
    payload = {**TOKENS_REVOKED, "event": {"type": "app_mention", "text": "hi"}}
    body, headers = slack_request(payload)
    hook = verify_slack_webhook(body, headers, SLACK_SECRET, now=NOW)
    assert hook.kind is WebhookKind.OTHER
    assert hook.revoked_tokens is False


def test_slack_headers_are_case_insensitive() -> None:
    body, headers = slack_request(TOKENS_REVOKED)
    lowered = {key.lower(): value for key, value in headers.items()}
    assert verify_slack_webhook(body, lowered, SLACK_SECRET, now=NOW).delivery_id == "Ev0001"


def test_slack_accepts_any_secret_during_rotation() -> None:
    body, headers = slack_request(TOKENS_REVOKED, secret="new-secret")
    secrets = [SecretStr(SLACK_SECRET), SecretStr("new-secret")]
    assert verify_slack_webhook(body, headers, secrets, now=NOW).kind is WebhookKind.TOKENS_REVOKED


def test_slack_bad_signature_is_rejected_without_leaking_secret_or_signature() -> None:
    body, headers = slack_request(TOKENS_REVOKED, secret="someone-else")
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify_slack_webhook(body, headers, SLACK_SECRET, now=NOW)
    assert reason_of(excinfo) is WebhookRejection.BAD_SIGNATURE
    message = str(excinfo.value)
    assert SLACK_SECRET not in message
    assert headers["X-Slack-Signature"] not in message
    assert headers["X-Slack-Signature"].removeprefix("v0=") not in message


def test_slack_tampered_body_is_rejected() -> None:
    body, headers = slack_request(TOKENS_REVOKED)
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify_slack_webhook(body.replace(b"U0001", b"U0666"), headers, SLACK_SECRET, now=NOW)
    assert reason_of(excinfo) is WebhookRejection.BAD_SIGNATURE


def test_slack_wrong_signature_version_is_rejected() -> None:
    body, headers = slack_request(TOKENS_REVOKED)
    headers["X-Slack-Signature"] = "v1=" + headers["X-Slack-Signature"].removeprefix("v0=")
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify_slack_webhook(body, headers, SLACK_SECRET, now=NOW)
    assert reason_of(excinfo) is WebhookRejection.BAD_SIGNATURE


@pytest.mark.parametrize("offset", [timedelta(minutes=-5, seconds=-1), timedelta(minutes=5, seconds=1)])
def test_slack_stale_or_future_timestamp_is_rejected(offset: timedelta) -> None:
    # Correctly signed, but outside the window: a captured request replayed later.
    body, headers = slack_request(TOKENS_REVOKED, at=NOW + offset)
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify_slack_webhook(body, headers, SLACK_SECRET, now=NOW)
    assert reason_of(excinfo) is WebhookRejection.STALE_TIMESTAMP


def test_slack_timestamp_at_the_edge_of_the_window_is_accepted() -> None:
    body, headers = slack_request(TOKENS_REVOKED, at=NOW - timedelta(minutes=5))
    assert verify_slack_webhook(body, headers, SLACK_SECRET, now=NOW).delivery_id == "Ev0001"


@pytest.mark.parametrize("missing", ["X-Slack-Request-Timestamp", "X-Slack-Signature"])
def test_slack_missing_header_is_rejected(missing: str) -> None:
    body, headers = slack_request(TOKENS_REVOKED)
    del headers[missing]
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify_slack_webhook(body, headers, SLACK_SECRET, now=NOW)
    assert reason_of(excinfo) is WebhookRejection.MISSING_HEADER
    assert missing in str(excinfo.value)


def test_slack_non_numeric_timestamp_is_malformed() -> None:
    body, headers = slack_request(TOKENS_REVOKED)
    headers["X-Slack-Request-Timestamp"] = "yesterday"
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify_slack_webhook(body, headers, SLACK_SECRET, now=NOW)
    assert reason_of(excinfo) is WebhookRejection.MALFORMED


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[1, 2]",
        json.dumps({"type": "event_callback", "event": {"type": "tokens_revoked"}}).encode(),
        json.dumps(
            {"type": "event_callback", "event_id": "Ev1", "event": {"type": "tokens_revoked"}}
        ).encode(),
        json.dumps(
            {
                "type": "event_callback",
                "event_id": "Ev1",
                "event": {"type": "tokens_revoked", "tokens": {"oauth": "U1"}},
            }
        ).encode(),
        json.dumps({"type": "url_verification"}).encode(),
    ],
)
def test_slack_malformed_but_signed_body_is_rejected(body: bytes) -> None:
    timestamp = str(int(NOW.timestamp()))
    headers = {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": slack_signature(SLACK_SECRET, timestamp, body),
    }
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify_slack_webhook(body, headers, SLACK_SECRET, now=NOW)
    assert reason_of(excinfo) is WebhookRejection.MALFORMED


def test_slack_replayed_request_has_the_same_delivery_id() -> None:
    body, headers = slack_request(TOKENS_REVOKED)
    first = verify_slack_webhook(body, headers, SLACK_SECRET, now=NOW)
    # Replayed a minute later (inside the window) with Slack's retry header added.
    again = verify_slack_webhook(
        body, {**headers, "X-Slack-Retry-Num": "1"}, SLACK_SECRET, now=NOW + timedelta(minutes=1)
    )
    assert first.delivery_id == again.delivery_id == "Ev0001"


def test_slack_replayed_handshake_has_the_same_delivery_id() -> None:
    body, headers = slack_request({"challenge": "abc", "type": "url_verification"})
    first = verify_slack_webhook(body, headers, SLACK_SECRET, now=NOW)
    again = verify_slack_webhook(body, headers, SLACK_SECRET, now=NOW + timedelta(seconds=30))
    assert first.delivery_id == again.delivery_id


def test_slack_without_any_secret_accepts_nothing() -> None:
    body, headers = slack_request(TOKENS_REVOKED)
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify_slack_webhook(body, headers, [], now=NOW)
    assert reason_of(excinfo) is WebhookRejection.NOT_CONFIGURED


# --- GitHub ----------------------------------------------------------------------------------

REVOKED = {
    "action": "revoked",
    "sender": {"login": "octocat", "id": 583231, "type": "User"},
}
DELIVERY = "72d3162e-cc78-11e3-81ab-4c9367dc0958"


def github_request(
    payload: dict[str, Any], *, event: str = "github_app_authorization", secret: str = GITHUB_SECRET
) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    return body, {
        "X-Hub-Signature-256": github_signature(secret, body),
        "X-GitHub-Delivery": DELIVERY,
        "X-GitHub-Event": event,
        "Content-Type": "application/json",
    }


def test_github_signature_matches_the_documented_example() -> None:
    # GitHub's docs: secret "It's a Secret to Everybody", payload "Hello, World!".
    expected = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert github_signature(GITHUB_SECRET, b"Hello, World!") == expected


def test_github_authorization_revoked_is_accepted() -> None:
    body, headers = github_request(REVOKED)
    hook = verify_github_webhook(body, headers, GITHUB_SECRET, now=NOW)
    assert hook.provider == "github"
    assert hook.kind is WebhookKind.AUTHORIZATION_REVOKED
    assert hook.revoked_tokens is True
    assert hook.account == "octocat"
    assert hook.subject == {"login": "octocat", "id": "583231"}
    assert hook.delivery_id == DELIVERY
    assert hook.event_type == "github_app_authorization.revoked"


def test_github_ping_and_other_events_change_nothing() -> None:
    body, headers = github_request({"zen": "Keep it logically awesome.", "hook_id": 1}, event="ping")
    assert verify_github_webhook(body, headers, GITHUB_SECRET, now=NOW).kind is WebhookKind.PING
    body, headers = github_request({"action": "opened", "installation": {"id": 42}}, event="issues")
    hook = verify_github_webhook(body, headers, GITHUB_SECRET, now=NOW)
    assert hook.kind is WebhookKind.OTHER
    assert hook.revoked_tokens is False
    assert hook.workspace == "42"


def test_github_bad_signature_is_rejected_without_leaking() -> None:
    body, headers = github_request(REVOKED, secret="not the secret")
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify_github_webhook(body, headers, GITHUB_SECRET, now=NOW)
    assert reason_of(excinfo) is WebhookRejection.BAD_SIGNATURE
    message = str(excinfo.value)
    assert GITHUB_SECRET not in message
    assert headers["X-Hub-Signature-256"].removeprefix("sha256=") not in message


@pytest.mark.parametrize("value", ["sha1=0123", "0123abcd", "sha256=", "sha256=zz"])
def test_github_signature_in_another_form_is_rejected(value: str) -> None:
    body, headers = github_request(REVOKED)
    headers["X-Hub-Signature-256"] = value
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify_github_webhook(body, headers, GITHUB_SECRET, now=NOW)
    assert reason_of(excinfo) is WebhookRejection.BAD_SIGNATURE


def test_github_tampered_body_is_rejected() -> None:
    body, headers = github_request(REVOKED)
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify_github_webhook(body.replace(b"octocat", b"victim!"), headers, GITHUB_SECRET, now=NOW)
    assert reason_of(excinfo) is WebhookRejection.BAD_SIGNATURE


@pytest.mark.parametrize("missing", ["X-Hub-Signature-256", "X-GitHub-Delivery", "X-GitHub-Event"])
def test_github_missing_header_is_rejected(missing: str) -> None:
    body, headers = github_request(REVOKED)
    del headers[missing]
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify_github_webhook(body, headers, GITHUB_SECRET, now=NOW)
    assert reason_of(excinfo) is WebhookRejection.MISSING_HEADER


@pytest.mark.parametrize("payload", [b"{", b'"text"', json.dumps({"action": "revoked"}).encode()])
def test_github_malformed_but_signed_body_is_rejected(payload: bytes) -> None:
    headers = {
        "X-Hub-Signature-256": github_signature(GITHUB_SECRET, payload),
        "X-GitHub-Delivery": DELIVERY,
        "X-GitHub-Event": "github_app_authorization",
    }
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify_github_webhook(payload, headers, GITHUB_SECRET, now=NOW)
    assert reason_of(excinfo) is WebhookRejection.MALFORMED


def test_github_replayed_delivery_has_the_same_delivery_id() -> None:
    # GitHub signs no timestamp: a replay verifies, and only the delivery id can refuse it.
    body, headers = github_request(REVOKED)
    first = verify_github_webhook(body, headers, GITHUB_SECRET, now=NOW)
    again = verify_github_webhook(body, headers, GITHUB_SECRET, now=NOW + timedelta(days=30))
    assert first.delivery_id == again.delivery_id == DELIVERY


def test_github_headers_are_case_insensitive_and_secrets_rotate() -> None:
    body, headers = github_request(REVOKED, secret="next")
    lowered = {key.lower(): value for key, value in headers.items()}
    hook = verify_github_webhook(body, lowered, [GITHUB_SECRET, SecretStr("next")], now=NOW)
    assert hook.kind is WebhookKind.AUTHORIZATION_REVOKED


# --- Google RISC -----------------------------------------------------------------------------

CLIENT_ID = "123456789-abcdefgh.apps.googleusercontent.com"
ISSUER = "https://accounts.google.com/"
TOKENS_REVOKED_URI = "https://schemas.openid.net/secevent/oauth/event-type/tokens-revoked"
ACCOUNT_DISABLED_URI = "https://schemas.openid.net/secevent/risc/event-type/account-disabled"
SESSIONS_REVOKED_URI = "https://schemas.openid.net/secevent/risc/event-type/sessions-revoked"


@pytest.fixture(scope="module")
def signing_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks(signing_key: rsa.RSAPrivateKey) -> dict[str, Any]:
    public = json.loads(RSAAlgorithm.to_jwk(signing_key.public_key()))
    return {"keys": [{**public, "kid": "key-1", "alg": "RS256", "use": "sig"}]}


def risc_claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": CLIENT_ID,
        "iat": int(NOW.timestamp()) - 30,
        "jti": "756E69717565206964656E746966696572",
        "events": {
            TOKENS_REVOKED_URI: {
                "subject": {"subject_type": "iss-sub", "iss": ISSUER, "sub": "7375626A656374"},
            }
        },
    }
    claims.update(overrides)
    return claims


def sign(key: Any, claims: dict[str, Any], *, kid: str = "key-1", algorithm: str = "RS256") -> bytes:
    return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid}).encode()


def verify_risc(body: bytes, jwks: dict[str, Any], **kwargs: Any) -> Any:
    kwargs.setdefault("now", NOW)
    return verify_google_risc_webhook(
        body, {"Content-Type": "application/secevent+jwt"}, jwks=jwks, client_ids=[CLIENT_ID], **kwargs
    )


def test_risc_tokens_revoked_is_accepted(signing_key: rsa.RSAPrivateKey, jwks: dict[str, Any]) -> None:
    hook = verify_risc(sign(signing_key, risc_claims()), jwks)
    assert hook.provider == "google"
    assert hook.kind is WebhookKind.TOKENS_REVOKED
    assert hook.revoked_tokens is True
    assert hook.account == "7375626A656374"
    assert hook.subject["iss"] == ISSUER
    assert hook.delivery_id == "756E69717565206964656E746966696572"
    assert hook.event_type == TOKENS_REVOKED_URI


def test_risc_accepts_any_of_the_tenant_client_ids(
    signing_key: rsa.RSAPrivateKey, jwks: dict[str, Any]
) -> None:
    body = sign(signing_key, risc_claims(aud="other-platform-client"))
    hook = verify_google_risc_webhook(
        body, {}, jwks=jwks, client_ids=[CLIENT_ID, "other-platform-client"], now=NOW
    )
    assert hook.kind is WebhookKind.TOKENS_REVOKED


@pytest.mark.parametrize(
    ("event", "details", "kind", "revoked"),
    [
        (SESSIONS_REVOKED_URI, {}, WebhookKind.SESSIONS_REVOKED, False),
        (ACCOUNT_DISABLED_URI, {"reason": "hijacking"}, WebhookKind.ACCOUNT_DISABLED, True),
        (ACCOUNT_DISABLED_URI, {"reason": "bulk-account"}, WebhookKind.ACCOUNT_DISABLED, False),
        (
            "https://schemas.openid.net/secevent/risc/event-type/account-enabled",
            {},
            WebhookKind.ACCOUNT_ENABLED,
            False,
        ),
        (
            "https://schemas.openid.net/secevent/risc/event-type/account-credential-change-required",
            {},
            WebhookKind.CREDENTIAL_CHANGE_REQUIRED,
            False,
        ),
        ("https://example.com/event-type/unknown", {}, WebhookKind.OTHER, False),
    ],
)
def test_risc_event_types_map_to_kinds(
    signing_key: rsa.RSAPrivateKey,
    jwks: dict[str, Any],
    event: str,
    details: dict[str, str],
    kind: WebhookKind,
    revoked: bool,
) -> None:
    subject = {"subject_type": "iss-sub", "iss": ISSUER, "sub": "42"}
    body = sign(signing_key, risc_claims(events={event: {"subject": subject, **details}}))
    hook = verify_risc(body, jwks)
    assert hook.kind is kind
    assert hook.revoked_tokens is revoked
    assert hook.account == "42"
    assert hook.reason == details.get("reason")


def test_risc_token_revoked_with_token_subject_has_no_account(
    signing_key: rsa.RSAPrivateKey, jwks: dict[str, Any]
) -> None:
    subject = {
        "subject_type": "oauth_token",
        "token_type": "refresh_token",
        "token_identifier_alg": "prefix",
        "token": "1//0abcdefghijkl",
    }
    uri = "https://schemas.openid.net/secevent/oauth/event-type/token-revoked"
    hook = verify_risc(sign(signing_key, risc_claims(events={uri: {"subject": subject}})), jwks)
    assert hook.kind is WebhookKind.TOKEN_REVOKED
    assert hook.revoked_tokens is True
    assert hook.account is None
    assert hook.subject["token_identifier_alg"] == "prefix"


def test_risc_email_is_the_account_when_there_is_no_sub(
    signing_key: rsa.RSAPrivateKey, jwks: dict[str, Any]
) -> None:
    subject = {"subject_type": "id_token_claims", "iss": ISSUER, "email": "user@example.com"}
    hook = verify_risc(
        sign(signing_key, risc_claims(events={TOKENS_REVOKED_URI: {"subject": subject}})), jwks
    )
    assert hook.account == "user@example.com"


def test_risc_verification_event_needs_no_subject(
    signing_key: rsa.RSAPrivateKey, jwks: dict[str, Any]
) -> None:
    uri = "https://schemas.openid.net/secevent/risc/event-type/verification"
    hook = verify_risc(sign(signing_key, risc_claims(events={uri: {"state": "test 1"}})), jwks)
    assert hook.kind is WebhookKind.VERIFICATION
    assert hook.account is None


def test_risc_token_signed_by_another_key_is_rejected(jwks: dict[str, Any]) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify_risc(sign(other, risc_claims()), jwks)
    assert reason_of(excinfo) is WebhookRejection.BAD_SIGNATURE


def test_risc_tampered_payload_is_rejected(signing_key: rsa.RSAPrivateKey, jwks: dict[str, Any]) -> None:
    header, _, signature = sign(signing_key, risc_claims()).split(b".")
    forged = jwt.utils.base64url_encode(json.dumps(risc_claims(jti="forged")).encode())
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify_risc(b".".join([header, forged, signature]), jwks)
    assert reason_of(excinfo) is WebhookRejection.BAD_SIGNATURE


def test_risc_unknown_kid_is_rejected(signing_key: rsa.RSAPrivateKey, jwks: dict[str, Any]) -> None:
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify_risc(sign(signing_key, risc_claims(), kid="rotated-away"), jwks)
    assert reason_of(excinfo) is WebhookRejection.UNKNOWN_KEY


def test_risc_hs256_signed_with_the_public_key_is_rejected(jwks: dict[str, Any]) -> None:
    # Algorithm confusion: an attacker "signs" with HMAC using the public JWK as the secret.
    # Built by hand: pyjwt itself refuses to HMAC with something that looks like a JWK.
    segments = [
        jwt.utils.base64url_encode(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "key-1"}).encode()),
        jwt.utils.base64url_encode(json.dumps(risc_claims()).encode()),
    ]
    mac = hmac.new(json.dumps(jwks["keys"][0]).encode(), b".".join(segments), hashlib.sha256).digest()
    body = b".".join([*segments, jwt.utils.base64url_encode(mac)])
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify_risc(body, jwks)
    assert reason_of(excinfo) is WebhookRejection.UNSUPPORTED_ALGORITHM


def test_risc_unsigned_token_is_rejected(jwks: dict[str, Any]) -> None:
    body = jwt.encode(risc_claims(), "", algorithm="none", headers={"kid": "key-1"}).encode()
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify_risc(body, jwks)
    assert reason_of(excinfo) is WebhookRejection.UNSUPPORTED_ALGORITHM


def test_risc_wrong_issuer_is_rejected(signing_key: rsa.RSAPrivateKey, jwks: dict[str, Any]) -> None:
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify_risc(sign(signing_key, risc_claims(iss="https://evil.example.com")), jwks)
    assert reason_of(excinfo) is WebhookRejection.BAD_ISSUER


def test_risc_issuer_can_be_pinned_to_the_discovered_value(
    signing_key: rsa.RSAPrivateKey, jwks: dict[str, Any]
) -> None:
    body = sign(signing_key, risc_claims(iss="https://accounts.google.com"))
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify_risc(body, jwks, issuers=[ISSUER])
    assert reason_of(excinfo) is WebhookRejection.BAD_ISSUER


def test_risc_other_audience_is_rejected(signing_key: rsa.RSAPrivateKey, jwks: dict[str, Any]) -> None:
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify_risc(sign(signing_key, risc_claims(aud="another-tenants-client")), jwks)
    assert reason_of(excinfo) is WebhookRejection.BAD_AUDIENCE


@pytest.mark.parametrize("age", [timedelta(hours=-24, seconds=-1), timedelta(minutes=5, seconds=1)])
def test_risc_iat_outside_the_window_is_rejected(
    signing_key: rsa.RSAPrivateKey, jwks: dict[str, Any], age: timedelta
) -> None:
    body = sign(signing_key, risc_claims(iat=int((NOW + age).timestamp())))
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify_risc(body, jwks)
    assert reason_of(excinfo) is WebhookRejection.STALE_TIMESTAMP


def test_risc_needs_no_exp(signing_key: rsa.RSAPrivateKey, jwks: dict[str, Any]) -> None:
    # SETs describe past events; an exp in the past must not make a fresh token fail.
    body = sign(signing_key, risc_claims(exp=int(NOW.timestamp()) - 3600))
    assert verify_risc(body, jwks).kind is WebhookKind.TOKENS_REVOKED


@pytest.mark.parametrize(
    "claims",
    [
        {k: v for k, v in risc_claims().items() if k != "jti"},
        risc_claims(events={}),
        risc_claims(events="tokens-revoked"),
        risc_claims(events={TOKENS_REVOKED_URI: {}}),
        risc_claims(iat="yesterday"),
    ],
)
def test_risc_malformed_claims_are_rejected(
    signing_key: rsa.RSAPrivateKey, jwks: dict[str, Any], claims: dict[str, Any]
) -> None:
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify_risc(sign(signing_key, claims), jwks)
    assert reason_of(excinfo) is WebhookRejection.MALFORMED


@pytest.mark.parametrize("body", [b"", b"not-a-jwt", b"a.b.c", "é.é.é".encode(), b"x" * 20_000])
def test_risc_malformed_body_is_rejected(jwks: dict[str, Any], body: bytes) -> None:
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify_risc(body, jwks)
    assert reason_of(excinfo) is WebhookRejection.MALFORMED


def test_risc_without_client_ids_accepts_nothing(
    signing_key: rsa.RSAPrivateKey, jwks: dict[str, Any]
) -> None:
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify_google_risc_webhook(sign(signing_key, risc_claims()), {}, jwks=jwks, client_ids=[], now=NOW)
    assert reason_of(excinfo) is WebhookRejection.NOT_CONFIGURED


def test_risc_replayed_token_has_the_same_delivery_id(
    signing_key: rsa.RSAPrivateKey, jwks: dict[str, Any]
) -> None:
    body = sign(signing_key, risc_claims())
    first = verify_risc(body, jwks)
    again = verify_risc(body, jwks, now=NOW + timedelta(hours=1))
    assert first.delivery_id == again.delivery_id == risc_claims()["jti"]


def test_risc_errors_do_not_carry_the_token(signing_key: rsa.RSAPrivateKey, jwks: dict[str, Any]) -> None:
    body = sign(signing_key, risc_claims(aud="nope"))
    with pytest.raises(WebhookVerificationError) as excinfo:
        verify_risc(body, jwks)
    signature = body.rsplit(b".", 1)[1].decode()
    assert signature not in str(excinfo.value)
