"""Envelope encryption for the vault: pure code, no I/O besides reading the keyring file or variable.

Master keyring -> wraps one data key per tenant -> seals each secret with associated data binding
tenant, row, the row's owner and provider, and field.
"""

from grantline.vault.domain.data_key_cache import DataKeyCache
from grantline.vault.domain.data_keys import (
    WrappedDataKey,
    master_key_usage,
    rewrap_data_key,
    unwrap_data_key,
    wrap_data_key,
)
from grantline.vault.domain.envelope import (
    TENANT_OWNER,
    DataKeyLookup,
    RowKind,
    SealContext,
    SecretField,
    open_sealed,
    reseal_bound,
    seal,
    sealed_format_version,
    sealed_key_id,
)
from grantline.vault.domain.errors import DecryptionError, KeyInUseError, KeyringError
from grantline.vault.domain.fingerprint import fingerprint
from grantline.vault.domain.key_material import DataKey, MasterKey, generate_data_key
from grantline.vault.domain.keyring import (
    DEFAULT_KEYRING_ENV,
    Keyring,
    generate_master_key_entry,
    load_keyring_env,
    load_keyring_file,
    parse_keyring,
    remove_retired_key,
)

__all__ = [
    "DEFAULT_KEYRING_ENV",
    "TENANT_OWNER",
    "DataKey",
    "DataKeyCache",
    "DataKeyLookup",
    "DecryptionError",
    "KeyInUseError",
    "Keyring",
    "KeyringError",
    "MasterKey",
    "RowKind",
    "SealContext",
    "SecretField",
    "WrappedDataKey",
    "fingerprint",
    "generate_data_key",
    "generate_master_key_entry",
    "load_keyring_env",
    "load_keyring_file",
    "master_key_usage",
    "open_sealed",
    "parse_keyring",
    "remove_retired_key",
    "reseal_bound",
    "rewrap_data_key",
    "seal",
    "sealed_format_version",
    "sealed_key_id",
    "unwrap_data_key",
    "wrap_data_key",
]
