"""A tenant's versioned data keys, as HashiCorp Vault transit keeps versions of a named key.

The newest version seals; every version at or above the tenant's minimum decryption version opens
what it sealed (a sealed value names its data key by id in its header). Raising the minimum retires
the versions below it: values still sealed under them are refused with an error that says so, and
`grantline keys reseal` moves values to the newest version beforehand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from grantline.vault.domain.account_digest import account_digest, account_digest_key
from grantline.vault.domain.data_keys import WrappedDataKey
from grantline.vault.domain.envelope import (
    SealContext,
    open_sealed,
    seal,
    sealed_format_version,
    sealed_key_id,
)
from grantline.vault.domain.errors import DecryptionError
from grantline.vault.domain.key_material import DataKey
from grantline.vault.domain.sealed_format import SEALED_FORMAT_VERSION

# Values sealed under one version before the next is created. AES-GCM with random 96-bit nonces stays
# within NIST SP 800-38D's bound on nonce collisions up to 2^32 encryptions per key; this keeps a
# factor of two below it.
DEFAULT_MAX_ENCRYPTIONS = 2**31

# Unwraps a tenant's wrapped data key (through the cache of unwrapped keys).
Unwrapper = Callable[[WrappedDataKey], DataKey]


@dataclass(frozen=True, slots=True)
class DataKeyVersion:
    """One version of a tenant's data key, still wrapped."""

    version: int
    wrapped: WrappedDataKey


def below_minimum_error(version: int, min_version: int | None = None) -> DecryptionError:
    """The refusal of a value sealed under a retired version (names versions only, never a key or value)."""
    minimum = "minimum decryption version" + (f" {min_version}" if min_version is not None else "")
    return DecryptionError(
        f"sealed value is under data key version {version}, below this tenant's {minimum}; it must be "
        "re-authorized or re-created (run `grantline keys reseal` before raising the minimum)",
        reason="below_min_decryption_version",
    )


class TenantDataKeys:
    """The data keys of one tenant: the newest seals, the rest open what they sealed.

    Callable as a `DataKeyLookup` (data key id -> key) for `open_sealed`; keys are unwrapped on first
    use only, so opening one value unwraps one key.
    """

    __slots__ = ("_by_id", "_unwrap", "min_decryption_version", "newest", "tenant_id")

    def __init__(
        self,
        tenant_id: str,
        versions: Iterable[DataKeyVersion],
        *,
        min_decryption_version: int,
        unwrap: Unwrapper,
    ) -> None:
        self.tenant_id = tenant_id
        self._by_id = {v.wrapped.data_key_id: v for v in versions}
        if not self._by_id:
            raise ValueError("a tenant's data keys need at least one version")
        self.newest = max(self._by_id.values(), key=lambda v: v.version)
        self.min_decryption_version = min_decryption_version
        self._unwrap = unwrap

    @classmethod
    def from_rows(cls, tenant_id: str, rows: Sequence[Any], unwrap: Unwrapper) -> TenantDataKeys:
        """Keys from stored rows (`version`, `data_key_id`, `master_key_id`, `wrapped`, and the
        tenant's `min_decryption_version` on each)."""
        return cls(
            tenant_id,
            (
                DataKeyVersion(
                    row.version, WrappedDataKey(row.master_key_id, row.data_key_id, bytes(row.wrapped))
                )
                for row in rows
            ),
            min_decryption_version=rows[0].min_decryption_version,
            unwrap=unwrap,
        )

    @property
    def versions(self) -> list[int]:
        """The versions, oldest first."""
        return sorted(v.version for v in self._by_id.values())

    def sealing_key(self) -> DataKey:
        """The newest version's key: every new value is sealed with it."""
        return self._unwrap(self.newest.wrapped)

    def version_of(self, data_key_id: str) -> int | None:
        """The version of a data key id of this tenant (None: not one of its keys)."""
        found = self._by_id.get(data_key_id)
        return None if found is None else found.version

    def __call__(self, data_key_id: str) -> DataKey:
        found = self._by_id.get(data_key_id)
        if found is None:
            raise DecryptionError(
                f"sealed value is under data key {data_key_id!r}, which is not one of this tenant's",
                reason="unknown_data_key",
            )
        if found.version < self.min_decryption_version:
            raise below_minimum_error(found.version, self.min_decryption_version)
        return self._unwrap(found.wrapped)

    def account_digest(self, provider: str, account: str) -> bytes:
        """The keyed digest of a provider account id, under the key derived from the first version."""
        oldest = min(self._by_id.values(), key=lambda v: v.version)
        return account_digest(account_digest_key(self._unwrap(oldest.wrapped)), provider, account)

    def seal(self, context: SealContext, plaintext: str) -> bytes:
        """Seal with the newest version."""
        return seal(self.sealing_key(), context=context, plaintext=plaintext)

    def open(self, context: SealContext, sealed: bytes, *, accept_unbound: bool) -> str:
        """Open a value sealed under any version still allowed to decrypt."""
        return open_sealed(self, context=context, sealed=sealed, accept_unbound=accept_unbound)

    def reseal_to_newest(self, context: SealContext, sealed: bytes) -> bytes | None:
        """Seal a value again under the newest version, in the bound format; None when it is both already.

        The value is opened first (authenticated against its tenant, row and field), so only what was
        sealed for this row is re-sealed. Values under a retired version are refused, not moved.
        """
        if (
            sealed_key_id(sealed) == self.newest.wrapped.data_key_id
            and sealed_format_version(sealed) == SEALED_FORMAT_VERSION
        ):
            return None
        plaintext = self.open(context, sealed, accept_unbound=True)
        return self.seal(context, plaintext)

    def __repr__(self) -> str:
        return (
            f"TenantDataKeys(tenant_id={self.tenant_id!r}, versions={self.versions}, "
            f"min_decryption_version={self.min_decryption_version})"
        )
