"""Run grants as a verifier sees them: only an unaltered, current grant signed by a known key passes."""

import json
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from fixtures.run_grants import altered_grant
from pydantic import SecretStr

from grantline.contract.run_grants import GRANT_AUDIENCE, unverified_claims
from grantline.runtime.run_grants import (
    GrantRejected,
    KeySetError,
    RunGrantSigner,
    RunGrantVerifier,
    load_key_set,
    new_signing_key,
    public_key_set,
)

KEYS = {"keys": [new_signing_key("k1")]}
OTHER = {"keys": [new_signing_key("k1")]}  # same kid, another key: a forger's


def issue(keys=KEYS, ttl=3600, **claims):  # type: ignore[no-untyped-def]
    fields = dict(
        tenant_id="tenant-a", run_id="r-1", user_id="alice", app_id="app-1", providers={"github": ("repo",)}
    )
    fields.update(claims)
    return RunGrantSigner(keys, active_kid=None, ttl_seconds=ttl).issue(is_test=False, **fields)  # type: ignore[arg-type]


def verifier(keys=KEYS, max_lifetime=24 * 3600) -> RunGrantVerifier:  # type: ignore[no-untyped-def]
    return RunGrantVerifier(public_key_set(keys), max_lifetime_seconds=max_lifetime)


def test_a_valid_grant_verifies_with_its_claims() -> None:
    grant = verifier().verify(issue())
    assert (grant.tenant_id, grant.user_id, grant.run_id, grant.app_id) == (
        "tenant-a",
        "alice",
        "r-1",
        "app-1",
    )
    assert grant.covers("github") and not grant.covers("slack")
    assert grant.scopes_beyond("github", ["repo", "admin:org"]) == ["admin:org"]
    assert unverified_claims(issue())["aud"] == GRANT_AUDIENCE


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"tid": "tenant-b"}, "signature"),
        ({"sub": "bob"}, "signature"),
        ({"prv": {"github": [], "slack": []}}, "signature"),
        ({"exp": int(time.time()) + 10 * 24 * 3600}, "signature"),
    ],
)
def test_an_altered_grant_is_refused(change: dict[str, object], reason: str) -> None:
    with pytest.raises(GrantRejected, match=reason):
        verifier().verify(altered_grant(issue(), **change))


def test_forged_expired_foreign_and_unsigned_grants_are_refused() -> None:
    check = verifier()
    with pytest.raises(GrantRejected, match="signature"):
        check.verify(issue(keys=OTHER))
    with pytest.raises(GrantRejected, match="unknown key"):
        check.verify(issue(keys={"keys": [new_signing_key("k9")]}))
    with pytest.raises(GrantRejected, match="expired"):
        RunGrantVerifier(public_key_set(KEYS), max_lifetime_seconds=3600, leeway_seconds=0).verify(
            RunGrantSigner(KEYS, active_kid=None, ttl_seconds=60).issue(
                tenant_id="t",
                run_id="r",
                user_id="u",
                app_id="a",
                providers={},
                is_test=False,
                now=datetime.now(UTC) - timedelta(hours=1),
            )
        )
    unsigned = jwt.encode(unverified_claims(issue()), None, algorithm="none", headers={"kid": "k1"})  # type: ignore[arg-type]
    with pytest.raises(GrantRejected):
        check.verify(unsigned)
    hmac = jwt.encode(unverified_claims(issue()), "k" * 32, algorithm="HS256", headers={"kid": "k1"})
    with pytest.raises(GrantRejected):
        check.verify(hmac)
    with pytest.raises(GrantRejected, match="not a JWT"):
        check.verify("garbage")


def test_a_grant_living_longer_than_the_verifier_accepts_is_refused() -> None:
    with pytest.raises(GrantRejected, match="lifetime"):
        verifier(max_lifetime=600).verify(issue(ttl=3600))


def test_a_verified_grant_is_remembered_until_it_expires() -> None:
    check = verifier()
    token = issue()
    first = check.verify(token)
    assert check.verify(token) is first
    expires = first.expires_at.timestamp()
    with pytest.raises(GrantRejected, match="expired"):
        check.verify(token, now=expires + 60)


def test_rotation_old_and_new_keys_verify_while_both_are_published() -> None:
    both = {"keys": [*KEYS["keys"], new_signing_key("k2")]}
    check = verifier(keys=both)
    assert check.verify(issue(keys=KEYS)).run_id == "r-1"
    newer = RunGrantSigner(both, active_kid="k2", ttl_seconds=60).issue(
        tenant_id="t", run_id="r-2", user_id="u", app_id="a", providers={}, is_test=True
    )
    assert jwt.get_unverified_header(newer)["kid"] == "k2"
    assert check.verify(newer).is_test
    with pytest.raises(KeySetError, match="active kid"):
        RunGrantSigner(both, active_kid="k3", ttl_seconds=60)


def test_key_set_errors_name_the_setting_never_the_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    private = json.dumps(KEYS)
    with pytest.raises(KeySetError, match="no private part"):
        RunGrantSigner(public_key_set(KEYS), active_kid=None, ttl_seconds=60)
    with pytest.raises(KeySetError, match="not JSON") as error:
        load_key_set("GRANTLINE_X", file=None, value=SecretStr(private[:-2]))
    assert KEYS["keys"][0]["d"] not in str(error.value)
    with pytest.raises(KeySetError, match="cannot read"):
        load_key_set("GRANTLINE_X", file=tmp_path / "missing.json", value=None)
    with pytest.raises(KeySetError, match="at least one key"):
        load_key_set("GRANTLINE_X", file=None, value=SecretStr('{"keys": []}'))
    assert load_key_set("GRANTLINE_X", file=None, value=None) is None
