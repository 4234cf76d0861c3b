"""Security tests attack real services; the vault's test harness (sandbox provider, driving the vault
over NATS) lives beside the vault's tests and is shared from there, not copied."""

import sys
from pathlib import Path

_VAULT_TESTS = str(Path(__file__).resolve().parents[1] / "vault")
if _VAULT_TESTS not in sys.path:
    sys.path.insert(0, _VAULT_TESTS)
