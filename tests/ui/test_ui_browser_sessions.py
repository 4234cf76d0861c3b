"""Unit tests of the signed browser sessions and their CSRF tokens (no I/O)."""

import json
import time

from grantline.auth_gateway.entrypoints.ui.session_cookies import SessionSigner
from grantline.auth_gateway.service.connect_sessions import MAX_SCOPE_CHARS

SIGNER = SessionSigner(b"k" * 32)


def test_admin_cookie_round_trip_holds_only_ids():
    value, session = SIGNER.seal_admin(tenant_id="t1", key_id="key_1", ttl_seconds=60)
    assert SIGNER.open_admin(value) == session
    assert "glk_" not in value


def test_tampered_expired_foreign_and_cross_purpose_cookies_are_refused():
    value, _ = SIGNER.seal_admin(tenant_id="t1", key_id="key_1", ttl_seconds=60)
    _, mac = value.split(".")
    forged_body = SIGNER._seal("admin", {"t": "t2", "k": "key_1", "exp": 2**40, "n": "x"}).split(".")[0]
    assert SIGNER.open_admin(f"{forged_body}.{mac}") is None
    assert SIGNER.open_admin(value, now=time.time() + 61) is None
    assert SessionSigner(b"o" * 32).open_admin(value) is None
    assert SIGNER.open_connect(value) is None
    for junk in ("", "a.b", "...", "x" * 3000, None):
        assert SIGNER.open_admin(junk) is None


def test_csrf_token_is_bound_to_its_session():
    _, first = SIGNER.seal_admin(tenant_id="t1", key_id="key_1", ttl_seconds=60)
    _, second = SIGNER.seal_admin(tenant_id="t1", key_id="key_1", ttl_seconds=60)
    token = SIGNER.csrf_token(first.nonce)
    assert SIGNER.csrf_valid(first.nonce, token)
    assert not SIGNER.csrf_valid(second.nonce, token)
    assert not SIGNER.csrf_valid(first.nonce, None)


def test_a_connect_cookie_with_the_largest_scope_a_session_may_have_still_opens():
    # The longest ids the API admits (a non-ASCII user id is JSON-escaped six characters each), and a
    # scope just under what minting allows.
    apps = {f"p{i:02d}" + "x" * 61: "a" * 40 for i in range(8)}
    providers = tuple(apps)
    assert MAX_SCOPE_CHARS - 200 < len(json.dumps([providers, apps])) <= MAX_SCOPE_CHARS
    value, session = SIGNER.seal_connect(
        tenant_id="t" * 128,
        user_id="ю" * 200,
        session_id="cs_" + "0" * 32,
        expires_at=int(time.time()) + 60,
        providers=providers,
        provider_apps=tuple(apps.items()),
    )
    assert SIGNER.open_connect(value) == session
