"""The callout issuer key pair, from the settings (an inline seed or a mounted file)."""

from __future__ import annotations

import nkeys

from grantline.runner_auth.adapters.nats_jwt import JwtError, key_pair
from grantline.runner_auth.settings import RunnerAuthSettings


class IssuerKeyError(RuntimeError):
    """The issuer seed is missing or is not an account nkey seed."""


def load_issuer(settings: RunnerAuthSettings) -> nkeys.KeyPair:
    """The issuer key pair; fails at start-up, with a clear message, when it is absent or wrong."""
    if settings.runner_auth_issuer_seed is not None:
        seed = settings.runner_auth_issuer_seed.get_secret_value()
    elif settings.runner_auth_issuer_seed_file is not None:
        try:
            seed = settings.runner_auth_issuer_seed_file.read_text()
        except OSError as error:
            raise IssuerKeyError(f"cannot read the issuer seed file: {error.strerror}") from None
    else:
        raise IssuerKeyError(
            "set GRANTLINE_RUNNER_AUTH_ISSUER_SEED or GRANTLINE_RUNNER_AUTH_ISSUER_SEED_FILE"
            " (an account nkey seed; see docs/nats-security.md)"
        )
    if not seed.strip().startswith("SA"):
        raise IssuerKeyError("the issuer seed must be an account nkey seed (it starts with 'SA')")
    try:
        return key_pair(seed)
    except JwtError:
        raise IssuerKeyError("the issuer seed is not a valid nkey seed") from None
