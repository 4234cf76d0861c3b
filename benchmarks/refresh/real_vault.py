"""The real vault in the refresh benchmark: `grantline run vault` over connections it sealed itself.

Each connection is granted for real at the sandbox provider (authorization code -> tokens), then
written to `vault.connections` with its access and refresh tokens sealed under the tenant's data key,
exactly as the vault stores them after `vault.exchange` (going through the exchange for thousands of
connections would only make the set-up slower). The provider app holds the sandbox client's sealed
secret. From then on everything is the product's own path: the refreshers ask `vault.refresh`, the
vault opens the refresh token, calls the sandbox's token endpoint, seals and stores the new tokens,
and publishes `connections.refreshed` and its audit record through its outbox.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import psycopg

from benchmarks.refresh.vault_stand_in import CLIENT_ID, CLIENT_SECRET, Held
from benchmarks.run_grant_keys import run_grant_environment
from grantline.devstack.embedded import free_port
from grantline.vault.domain import Keyring, SealContext, SecretField, generate_data_key, seal, wrap_data_key

TENANT = "bench"
PROVIDER_APP = "pa-bench"


class RealVault:
    """Seeds the vault's tables and runs the vault as its own process."""

    def __init__(self, database_url: str, workdir: Path) -> None:
        self.database_url = database_url
        self.workdir = workdir
        self.keyring = Keyring.from_bytes("mk-bench", {"mk-bench": secrets.token_bytes(32)})
        (workdir / "keyring.json").write_text(self.keyring.to_json())
        self.data_key = generate_data_key()

    def seed_provider_app(self) -> None:
        """The tenant's data key and the sandbox provider app (client secret sealed)."""
        wrapped = wrap_data_key(self.keyring, TENANT, self.data_key)
        context = SealContext.for_provider_app(TENANT, PROVIDER_APP, provider="sandbox")
        sealed_secret = seal(self.data_key, context=context, plaintext=CLIENT_SECRET)
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO vault.data_keys (tenant_id, data_key_id, master_key_id, wrapped)"
                " VALUES (%s, %s, %s, %s)",
                (TENANT, wrapped.data_key_id, wrapped.master_key_id, wrapped.ciphertext),
            )
            conn.execute(
                "INSERT INTO vault.provider_apps (id, tenant_id, provider, client_id, client_secret, scopes)"
                " VALUES (%s, %s, 'sandbox', %s, %s, %s)",
                (PROVIDER_APP, TENANT, CLIENT_ID, sealed_secret, ["read"]),
            )

    def store(self, granted: dict[str, Held]) -> None:
        """Write each granted connection as the vault stores it: tokens sealed, expiry from the grant."""
        rows = []
        for connection_id, held in granted.items():
            access, refresh = held.tokens.access_token, held.tokens.refresh_token
            assert refresh is not None, "the sandbox issues refresh tokens"
            rows.append(
                (
                    connection_id,
                    TENANT,
                    f"user:{connection_id}",
                    PROVIDER_APP,
                    ["read"],
                    held.expires_at,
                    self._seal(connection_id, SecretField.ACCESS_TOKEN, access.get_secret_value()),
                    self._seal(connection_id, SecretField.REFRESH_TOKEN, refresh.get_secret_value()),
                )
            )
        with psycopg.connect(self.database_url) as conn, conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO vault.connections (id, tenant_id, owner, provider, provider_app_id, auth_kind,"
                " status, scopes, is_default, expires_at, access_token, refresh_token)"
                " VALUES (%s, %s, %s, 'sandbox', %s, 'oauth2', 'active', %s, true, %s, %s, %s)",
                rows,
            )

    def _seal(self, connection_id: str, field: SecretField, value: str) -> bytes:
        # Bound to the row's owner and provider as `store` writes them.
        context = SealContext.for_connection(
            TENANT, connection_id, owner=f"user:{connection_id}", provider="sandbox", field=field
        )
        return seal(self.data_key, context=context, plaintext=value)

    def spawn(self, nats_url: str, sandbox_url: str, log: Path) -> subprocess.Popen[bytes]:
        """`grantline run vault`, with the sandbox in its catalogue."""
        env = {
            **os.environ,
            "GRANTLINE_NATS_URL": nats_url,
            "GRANTLINE_DATABASE_URL": self.database_url,
            "GRANTLINE_MASTER_KEYRING_FILE": str(self.workdir / "keyring.json"),
            "GRANTLINE_HTTP_PORT": str(free_port()),
            "GRANTLINE_LOG_LEVEL": "WARNING",
            "GRANTLINE_ENVIRONMENT": "development",
            "GRANTLINE_SANDBOX_URL": sandbox_url,
            "GRANTLINE_ALLOW_PRIVATE_PROVIDER_URLS": "true",  # the sandbox listens on 127.0.0.1
            **run_grant_environment(),
        }
        argv = [sys.executable, "-m", "grantline.cli.main", "run", "vault"]
        return subprocess.Popen(argv, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)

    def refreshed_at(self, connection_ids: list[str], since: datetime) -> dict[str, datetime]:
        """When the vault last refreshed each connection, for those refreshed after ``since``."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT id, last_refreshed_at FROM vault.connections"
                " WHERE id = ANY(%s) AND last_refreshed_at >= %s",
                (connection_ids, since),
            ).fetchall()
        return dict(rows)

    def refreshed_count(self, since: datetime) -> int:
        """How many connections the vault refreshed after ``since``."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM vault.connections WHERE last_refreshed_at >= %s", (since,)
            ).fetchone()
        return int(row[0]) if row else 0
