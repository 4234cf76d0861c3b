"""Run grant keys for the benchmarks' services: satisfaction signs with the private set, the vault
verifies with the public one (both given to every process a benchmark starts; each reads its own)."""

from __future__ import annotations

import json

from grantline.runtime.run_grants import new_signing_key, public_key_set

SIGNING_KEYS = {"keys": [new_signing_key("bench-1")]}


def run_grant_environment() -> dict[str, str]:
    """The GRANTLINE_RUN_GRANT_* variables of a benchmark's services."""
    return {
        "GRANTLINE_RUN_GRANT_SIGNING_KEYS": json.dumps(SIGNING_KEYS),
        "GRANTLINE_RUN_GRANT_VERIFICATION_KEYS": json.dumps(public_key_set(SIGNING_KEYS)),
    }
