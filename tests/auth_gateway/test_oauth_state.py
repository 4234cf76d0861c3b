"""OAuth state: minting, hashing, binding to tenant/provider, single use, expiry, RFC 9207 iss."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from grantline.auth_gateway.domain.incremental_scopes import scopes_for_reauthorization
from grantline.auth_gateway.domain.oauth_state import (
    STATE_TTL,
    PendingAuthorization,
    StateError,
    StateErrorCode,
    check_browser,
    check_issuer,
    check_pending,
    code_challenge_s256,
    hash_state,
    mark_used,
    new_code_verifier,
    new_pending_authorization,
    new_state,
    state_hash_for_lookup,
)

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def pending(**overrides: Any) -> PendingAuthorization:
    _plain, state_hash = new_state()
    fields: dict[str, Any] = {
        "state_hash": state_hash,
        "tenant_id": "tenant-a",
        "owner": "user:alice",
        "provider": "google",
        "connection_id": "conn-1",
        "scopes": ["openid", "email"],
        "redirect_uri": "https://grantline.example.com/v1/oauth/callback",
        "return_to": "https://app.example.com/done",
        "code_verifier": new_code_verifier(),
        "now": NOW,
    }
    fields.update(overrides)
    return new_pending_authorization(**fields)


def error_code(excinfo: pytest.ExceptionInfo[StateError]) -> StateErrorCode:
    return excinfo.value.code


# --- minting -------------------------------------------------------------------------------


def test_new_state_is_256_bits_url_safe_and_stored_hashed() -> None:
    plain, state_hash = new_state()
    assert len(plain) == 43  # 32 bytes, base64url without padding
    assert set(plain) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert state_hash == hash_state(plain)
    assert len(state_hash) == 64
    assert plain not in state_hash


def test_new_state_values_do_not_repeat() -> None:
    assert len({new_state()[0] for _ in range(1000)}) == 1000


def test_received_state_is_hashed_for_lookup() -> None:
    plain, state_hash = new_state()
    assert state_hash_for_lookup(plain) == state_hash


@pytest.mark.parametrize("received", [None, "", "short", "x" * 44, "a" * 42 + "!", "../" * 15])
def test_received_state_that_we_never_minted_is_unknown(received: str | None) -> None:
    with pytest.raises(StateError) as excinfo:
        state_hash_for_lookup(received)
    assert error_code(excinfo) is StateErrorCode.UNKNOWN_STATE


def test_pending_authorization_expires_after_ten_minutes_and_is_frozen() -> None:
    record = pending()
    assert record.created_at == NOW
    assert record.expires_at == NOW + timedelta(minutes=10) == NOW + STATE_TTL
    assert record.used_at is None
    assert record.scopes == ("openid", "email")
    with pytest.raises(ValidationError):
        record.tenant_id = "tenant-b"  # type: ignore[misc]


def test_code_verifier_never_shows_in_repr() -> None:
    record = pending(code_verifier=SecretStr("v" * 43))
    assert "v" * 43 not in repr(record)
    assert "v" * 43 not in str(record.model_dump())


@pytest.mark.parametrize("owner", ["user:alice", "workspace"])
def test_owner_is_a_user_or_the_workspace(owner: str) -> None:
    assert pending(owner=owner).owner == owner


@pytest.mark.parametrize("owner", ["alice", "user:", "workspaces", "team:x"])
def test_other_owners_are_refused(owner: str) -> None:
    with pytest.raises(ValidationError):
        pending(owner=owner)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        pending(now=datetime(2025, 3, 1, 12, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        check_pending(
            pending(), now=datetime(2025, 3, 1, 12, 1), tenant_id_expected=None, provider_expected=None
        )


# --- check_pending: one test per error code -----------------------------------------------


def test_fresh_matching_state_passes() -> None:
    check_pending(
        pending(), now=NOW + timedelta(minutes=9), tenant_id_expected="tenant-a", provider_expected="google"
    )


def test_state_bound_only_by_itself_passes_without_expectations() -> None:
    check_pending(pending(), now=NOW, tenant_id_expected=None, provider_expected=None)


def test_unknown_state() -> None:
    with pytest.raises(StateError) as excinfo:
        check_pending(None, now=NOW, tenant_id_expected="tenant-a", provider_expected="google")
    assert error_code(excinfo) is StateErrorCode.UNKNOWN_STATE


@pytest.mark.parametrize("elapsed", [timedelta(minutes=10), timedelta(hours=3)])
def test_expired_state(elapsed: timedelta) -> None:
    with pytest.raises(StateError) as excinfo:
        check_pending(pending(), now=NOW + elapsed, tenant_id_expected="tenant-a", provider_expected="google")
    assert error_code(excinfo) is StateErrorCode.EXPIRED_STATE


def test_used_state() -> None:
    used = mark_used(pending(), now=NOW + timedelta(minutes=1))
    assert used.used_at == NOW + timedelta(minutes=1)
    with pytest.raises(StateError) as excinfo:
        check_pending(
            used, now=NOW + timedelta(minutes=2), tenant_id_expected="tenant-a", provider_expected="google"
        )
    assert error_code(excinfo) is StateErrorCode.USED_STATE


def test_used_state_that_also_expired_reports_used() -> None:
    used = mark_used(pending(), now=NOW + timedelta(minutes=1))
    with pytest.raises(StateError) as excinfo:
        check_pending(used, now=NOW + timedelta(hours=1), tenant_id_expected=None, provider_expected=None)
    assert error_code(excinfo) is StateErrorCode.USED_STATE


def test_wrong_tenant() -> None:
    with pytest.raises(StateError) as excinfo:
        check_pending(pending(), now=NOW, tenant_id_expected="tenant-b", provider_expected="google")
    assert error_code(excinfo) is StateErrorCode.WRONG_TENANT


def test_wrong_tenant_wins_over_used_and_expired() -> None:
    # A foreign tenant must not learn whether the state was used or how old it is.
    used = mark_used(pending(), now=NOW)
    with pytest.raises(StateError) as excinfo:
        check_pending(
            used, now=NOW + timedelta(hours=1), tenant_id_expected="tenant-b", provider_expected=None
        )
    assert error_code(excinfo) is StateErrorCode.WRONG_TENANT


def test_wrong_provider() -> None:
    with pytest.raises(StateError) as excinfo:
        check_pending(pending(), now=NOW, tenant_id_expected="tenant-a", provider_expected="github")
    assert error_code(excinfo) is StateErrorCode.WRONG_PROVIDER


# --- RFC 9207 issuer ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "received", "required"),
    [
        ("https://accounts.example.com", "https://accounts.example.com", False),
        ("https://accounts.example.com", None, False),  # provider does not send iss
        (None, None, False),
        (None, "https://whatever.example.com", True),  # no issuer known: nothing to compare
    ],
)
def test_issuer_accepted(expected: str | None, received: str | None, required: bool) -> None:
    check_issuer(expected, received, iss_required=required)


@pytest.mark.parametrize(
    ("expected", "received", "required"),
    [
        ("https://accounts.example.com", "https://evil.example.com", False),
        ("https://accounts.example.com", "https://accounts.example.com/", False),  # simple string compare
        ("https://accounts.example.com", "HTTPS://ACCOUNTS.EXAMPLE.COM", False),
        ("https://accounts.example.com", "", False),
        ("https://accounts.example.com", None, True),  # advertised support, then omitted
    ],
)
def test_issuer_mismatch(expected: str | None, received: str | None, required: bool) -> None:
    with pytest.raises(StateError) as excinfo:
        check_issuer(expected, received, iss_required=required)
    assert error_code(excinfo) is StateErrorCode.ISSUER_MISMATCH


# --- PKCE ---------------------------------------------------------------------------------


def test_code_challenge_matches_rfc_7636_appendix_b() -> None:
    verifier = SecretStr("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
    assert code_challenge_s256(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_new_code_verifier_is_valid_and_fresh() -> None:
    first, second = new_code_verifier(), new_code_verifier()
    assert len(first.get_secret_value()) == 43
    assert first.get_secret_value() != second.get_secret_value()
    assert len(code_challenge_s256(first)) == 43


@pytest.mark.parametrize("verifier", ["short", "x" * 129, "a" * 42 + " "])
def test_invalid_code_verifier_is_refused(verifier: str) -> None:
    with pytest.raises(ValueError, match="43-128"):
        code_challenge_s256(SecretStr(verifier))


# --- incremental scopes (re-authorization builds the pending authorization's scopes) ---------


def test_reauthorization_scopes_are_the_ordered_union() -> None:
    granted = ["openid", "email", "https://www.googleapis.com/auth/drive.readonly"]
    requested = ["https://www.googleapis.com/auth/calendar", "email"]
    defaults = ["openid", "profile"]
    assert scopes_for_reauthorization(granted, requested, defaults) == [
        "openid",
        "email",
        "https://www.googleapis.com/auth/drive.readonly",
        "https://www.googleapis.com/auth/calendar",
        "profile",
    ]


def test_reauthorization_scopes_split_space_delimited_and_drop_blanks() -> None:
    assert scopes_for_reauthorization(["repo  read:user"], ["", " ", "repo"], ()) == ["repo", "read:user"]


def test_reauthorization_with_nothing_new_keeps_what_was_granted() -> None:
    assert scopes_for_reauthorization(["a", "b"], [], []) == ["a", "b"]
    assert scopes_for_reauthorization([], [], []) == []


def test_a_flow_started_in_a_browser_finishes_only_in_that_browser():
    binding = hash_state("the browser's flow cookie")
    bound = pending(browser_binding=binding)
    check_browser(bound, binding)
    for presented in (None, hash_state("another browser's cookie")):
        with pytest.raises(StateError) as refused:
            check_browser(bound, presented)
        assert refused.value.code is StateErrorCode.OTHER_BROWSER
    check_browser(pending(), None)  # started through the API: bound by state alone
