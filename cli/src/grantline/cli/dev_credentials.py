"""The keys, secrets and identities ``grantline dev`` keeps under its data directory (each 0600).

Made once and reused, so a second start keeps its data readable and people signed in: the vault's
master keyring, the UI session secret, the run grant key pair, the auth-callout issuer seed and the
dev tenant's runner identity. Production takes each of these from a Secret instead.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from pathlib import Path

ISSUER_SEED_FILE = "runner-auth-issuer.nk"


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to a file only its owner can read, created so from the start."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)


def master_keyring(root: Path) -> Path:
    """A master keyring for development, kept beside the data (production reads it from a Secret)."""
    path = root / "master-keyring.json"
    if not path.exists():
        key_id = "dev-1"
        keyring = {"active": key_id, "keys": {key_id: base64.b64encode(secrets.token_bytes(32)).decode()}}
        write_private(path, json.dumps(keyring))
    return path


def ui_session_secret(root: Path) -> str:
    """The key that signs browser sessions, kept beside the data so a restart keeps people signed in."""
    path = root / "ui-session-secret"
    if not path.exists():
        write_private(path, secrets.token_urlsafe(48))
    return path.read_text().strip()


def run_grant_key_environment(root: Path) -> dict[str, dict[str, str]]:
    """Run grant keys for development: satisfaction gets the private set, the vault and the proxy the
    public one."""
    from grantline.runtime.run_grants import new_signing_key, public_key_set

    private = root / "run-grant-signing-keys.json"
    public = root / "run-grant-verification-keys.json"
    if not private.exists():
        write_private(private, json.dumps({"keys": [new_signing_key("dev-1")]}))
    public.write_text(json.dumps(public_key_set(json.loads(private.read_text()))))
    return {
        "satisfaction": {"GRANTLINE_RUN_GRANT_SIGNING_KEYS_FILE": str(private)},
        "vault": {"GRANTLINE_RUN_GRANT_VERIFICATION_KEYS_FILE": str(public)},
        "proxy": {"GRANTLINE_RUN_GRANT_VERIFICATION_KEYS_FILE": str(public)},
    }


# -- runner identities (runner-auth) ------------------------------------------------------------------


def callout_issuer(root: Path) -> str:
    """The auth-callout issuer's public key; its seed is kept beside the data (0600), made once."""
    from grantline.runner_auth.adapters.nats_jwt import key_pair, new_account_seed

    path = root / ISSUER_SEED_FILE
    if not path.exists():
        write_private(path, new_account_seed())
    os.chmod(path, 0o600)
    return str(key_pair(path.read_text()).public_key.decode())


def runner_auth_environment(root: Path, nats_passwords: dict[str, str]) -> dict[str, str]:
    """runner-auth's issuer seed file and its system-account (kick) password, when NATS has auth."""
    if not nats_passwords:
        return {}
    from grantline.runtime.nats.permissions import KICK_USER

    return {
        "GRANTLINE_RUNNER_AUTH_ISSUER_SEED_FILE": str(root / ISSUER_SEED_FILE),
        "GRANTLINE_RUNNER_AUTH_KICK_PASSWORD": nats_passwords[KICK_USER],
    }


def dev_runner_credentials(root: Path, database_url: str, tenant_id: str) -> dict[str, str]:
    """``nats_user``/``nats_password``/``nats_inbox_prefix`` of the dev tenant's runner.

    Kept in ``dev-runner.json`` (0600) and reused while the registry still holds it unrevoked;
    otherwise a new runner is created.
    """
    import asyncio

    path = root / "dev-runner.json"
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        stored = {}
    credentials = asyncio.run(_ensure_dev_runner(database_url, tenant_id, stored))
    if credentials != stored:
        write_private(path, json.dumps(credentials, indent=2))
    return credentials


async def _ensure_dev_runner(database_url: str, tenant_id: str, stored: dict[str, str]) -> dict[str, str]:
    from grantline.contract.runner_identities import runner_inbox_prefix
    from grantline.runner_auth.adapters.runner_repository import get_runner
    from grantline.runner_auth.service.runners import create_runner
    from grantline.runtime.db.driver import connect

    conn = await connect(database_url, application_name="grantline-dev")
    try:
        async with conn.transaction():
            existing = await get_runner(conn, str(stored.get("nats_user", "")))
            if (
                existing is not None
                and not existing.revoked
                and existing.tenants == (tenant_id,)
                and existing.secret_matches(str(stored.get("nats_password", "")))
            ):
                return stored
            issued = await create_runner(conn, tenants=[tenant_id], name="dev", created_by="grantline dev")
    finally:
        await conn.close()
    runner_id = issued.runner.runner_id
    return {
        "nats_user": runner_id,
        "nats_password": issued.secret.get_secret_value(),
        "nats_inbox_prefix": runner_inbox_prefix(runner_id),
    }
