"""Unit tests of the signed browser sessions and their CSRF tokens (no I/O)."""

import time

from grantline.auth_gateway.entrypoints.ui.session_cookies import SessionSigner

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
