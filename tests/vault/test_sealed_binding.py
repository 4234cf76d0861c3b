"""The bound sealed format: owner and provider in the associated data, and the unbound format beside it."""

from __future__ import annotations

import dataclasses

import pytest
from unbound_sealing import seal_unbound

from grantline.vault.domain import (
    DataKey,
    DecryptionError,
    SealContext,
    generate_data_key,
    open_sealed,
    reseal_bound,
    seal,
    sealed_format_version,
)

TOKEN = "gho_canary-token-for-binding-7c2e"
ALICE_GITHUB = SealContext.for_connection(
    "tenant-a", "conn-1", owner="user:alice", provider="github", field="access_token"
)
APP_SECRET = SealContext.for_provider_app("tenant-a", "pa-1", provider="github")


@pytest.fixture
def key() -> DataKey:
    return generate_data_key("dk-1")


def _lookup(key: DataKey):  # type: ignore[no-untyped-def]
    return lambda key_id: key


@pytest.mark.parametrize(
    "changed",
    [
        {"owner": "user:bob"},
        {"owner": "workspace"},
        {"provider": "gitlab"},
        {"tenant_id": "tenant-b"},
        {"row_id": "conn-2"},
        {"field": "refresh_token"},
    ],
    ids=["owner", "owner_to_workspace", "provider", "tenant", "connection", "field"],
)
@pytest.mark.parametrize("accept_unbound", [False, True])
def test_each_binding_is_checked(key: DataKey, changed: dict[str, str], accept_unbound: bool) -> None:
    sealed = seal(key, context=ALICE_GITHUB, plaintext=TOKEN)
    assert open_sealed(key, context=ALICE_GITHUB, sealed=sealed) == TOKEN
    moved = dataclasses.replace(ALICE_GITHUB, **changed)  # type: ignore[arg-type]
    for opener in (key, _lookup(key)):
        with pytest.raises(DecryptionError) as info:
            open_sealed(opener, context=moved, sealed=sealed, accept_unbound=accept_unbound)
        assert info.value.reason == "authentication"
        assert TOKEN not in str(info.value)


def test_a_provider_app_secret_is_bound_to_its_provider(key: DataKey) -> None:
    sealed = seal(key, context=APP_SECRET, plaintext="client-secret")
    assert open_sealed(key, context=APP_SECRET, sealed=sealed) == "client-secret"
    for moved in (
        dataclasses.replace(APP_SECRET, provider="evil-provider"),
        dataclasses.replace(APP_SECRET, row_id="pa-2"),
        APP_SECRET.with_field("api_key"),
    ):
        with pytest.raises(DecryptionError):
            open_sealed(key, context=moved, sealed=sealed)


def test_an_unbound_value_opens_only_when_accepted(key: DataKey) -> None:
    old = seal_unbound(key, ALICE_GITHUB, TOKEN)
    assert sealed_format_version(old) == 1
    for opener in (key, _lookup(key)):
        assert open_sealed(opener, context=ALICE_GITHUB, sealed=old, accept_unbound=True) == TOKEN
        with pytest.raises(DecryptionError) as info:
            open_sealed(opener, context=ALICE_GITHUB, sealed=old)
        assert info.value.reason == "unbound"
        assert "grantline keys reseal" in str(info.value)
    # Tenant, row and field stay bound in the old format; owner and provider never were.
    for moved in ({"tenant_id": "tenant-b"}, {"row_id": "conn-2"}, {"field": "refresh_token"}):
        with pytest.raises(DecryptionError):
            open_sealed(
                key, context=dataclasses.replace(ALICE_GITHUB, **moved), sealed=old, accept_unbound=True
            )
    bob = dataclasses.replace(ALICE_GITHUB, owner="user:bob")
    assert open_sealed(key, context=bob, sealed=old, accept_unbound=True) == TOKEN


def test_the_version_byte_cannot_be_swapped(key: DataKey) -> None:
    # A bound value relabelled as unbound (to skip the owner check) fails, and the other way round.
    bound = seal(key, context=ALICE_GITHUB, plaintext=TOKEN)
    unbound = seal_unbound(key, ALICE_GITHUB, TOKEN)
    for forged in (b"\x01" + bound[1:], b"\x02" + unbound[1:]):
        for opener in (key, _lookup(key)):
            with pytest.raises(DecryptionError) as info:
                open_sealed(opener, context=ALICE_GITHUB, sealed=forged, accept_unbound=True)
            assert info.value.reason == "authentication"


def test_unknown_versions_are_refused(key: DataKey) -> None:
    sealed = seal(key, context=ALICE_GITHUB, plaintext=TOKEN)
    for version in (0, 3, 255):
        forged = bytes((version,)) + sealed[1:]
        with pytest.raises(DecryptionError) as info:
            open_sealed(key, context=ALICE_GITHUB, sealed=forged, accept_unbound=True)
        assert info.value.reason == "format"


def test_reseal_binds_an_unbound_value_to_the_rows_owner_and_provider(key: DataKey) -> None:
    old = seal_unbound(key, ALICE_GITHUB, TOKEN)
    new = reseal_bound(key, context=ALICE_GITHUB, sealed=old)
    assert new is not None and sealed_format_version(new) == 2
    assert open_sealed(key, context=ALICE_GITHUB, sealed=new) == TOKEN
    with pytest.raises(DecryptionError):
        open_sealed(key, context=dataclasses.replace(ALICE_GITHUB, owner="user:bob"), sealed=new)
    # Already bound: nothing to do (a second run of the migration changes nothing).
    assert reseal_bound(key, context=ALICE_GITHUB, sealed=new) is None
    # A value that belongs to another row is not laundered into this one.
    with pytest.raises(DecryptionError):
        reseal_bound(key, context=dataclasses.replace(ALICE_GITHUB, row_id="conn-2"), sealed=old)
    with pytest.raises(DecryptionError) as info:
        reseal_bound(generate_data_key("dk-2"), context=ALICE_GITHUB, sealed=old)
    assert info.value.reason == "key_id"
