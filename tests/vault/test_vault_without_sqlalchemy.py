"""The vault serves its requests on psycopg alone: SQLAlchemy (about 20 MB at rest) never loads, not
at start and not on the way through provider apps, exchanges, resolves, refreshes, defaults,
revocations, tenant providers and webhooks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from vault_harness import SandboxServer

# A fresh interpreter: the test session itself has SQLAlchemy loaded (the tests' own queries use it).
_SERVING = textwrap.dedent(
    """
    import asyncio, json, os, sys
    from pathlib import Path

    from fixtures.run_grants import mint_grant
    from pydantic import SecretStr

    from grantline.contract import vault, vault_admin
    from grantline.contract.errors import ErrorReply
    from vault_harness import TENANT, VaultHarness, running_vault, vault_settings

    async def main(nats_url: str, database_url: str, sandbox_url: str, keyring: str) -> None:
        settings = vault_settings(nats_url, database_url, sandbox_url, Path(keyring))
        replies = {}
        async with running_vault(settings, None) as harness:
            replies["put_app"] = type(await harness.put_app("sandbox")).__name__
            info = await harness.connect("sandbox")
            # This interpreter's fixture keys are new ones: sign with the keys the vault verifies with.
            keys = json.loads(os.environ["GRANTLINE_RUN_GRANT_SIGNING_KEYS"])
            grant = mint_grant(TENANT, "alice", ["sandbox"], signing_keys=keys)
            replies["resolve"] = type(await harness.resolve("sandbox", grant=grant)).__name__
            refreshed = await harness.call(
                vault.SUBJECT_REFRESH,
                vault.RefreshRequest(tenant_id=TENANT, connection_id=info.connection_id),
                vault.RefreshReply,
            )
            replies["refresh"] = type(refreshed).__name__
            ref = vault_admin.ConnectionRef(tenant_id=TENANT, connection_id=info.connection_id)
            for name, subject, message, model in [
                ("list", vault_admin.SUBJECT_CONNECTION_LIST,
                 vault_admin.ListConnectionsRequest(tenant_id=TENANT), vault_admin.ConnectionList),
                ("default", vault_admin.SUBJECT_CONNECTION_SET_DEFAULT, ref, vault.ConnectionInfo),
                ("revoke", vault.SUBJECT_REVOKE,
                 vault.RevokeRequest(tenant_id=TENANT, connection_id=info.connection_id, reason="user"),
                 vault.OkReply),
                ("remove", vault_admin.SUBJECT_CONNECTION_REMOVE, ref, vault.ConnectionInfo),
                ("providers", vault_admin.SUBJECT_TENANT_PROVIDER_LIST,
                 vault_admin.TenantProviderListRequest(tenant_id=TENANT), vault_admin.TenantProviderList),
                ("enable", vault_admin.SUBJECT_TENANT_PROVIDER_ENABLE,
                 vault_admin.SetProviderEnabledRequest(tenant_id=TENANT, provider="sandbox", enabled=False),
                 vault_admin.ProviderEnablement),
                ("webhook", vault_admin.SUBJECT_WEBHOOK_VERIFY,
                 vault_admin.WebhookVerifyRequest(provider="sandbox_github", body=b"{}", headers={}),
                 vault_admin.WebhookVerdict),
                ("delete_app", vault_admin.SUBJECT_PROVIDER_APP_DELETE,
                 vault_admin.ProviderAppDeleteRequest(tenant_id=TENANT, provider="sandbox"),
                 vault_admin.ProviderAppDeleted),
            ]:
                reply = await harness.call(subject, message, model)
                replies[name] = "ErrorReply" if isinstance(reply, ErrorReply) else type(reply).__name__
        print(json.dumps({"replies": replies, "sqlalchemy": "sqlalchemy" in sys.modules}))

    asyncio.run(main(*sys.argv[1:]))
    """
)


def test_the_vault_serves_requests_without_loading_sqlalchemy(
    nats_url: str, database_url: str, sandbox: SandboxServer, keyring_file: Path
) -> None:
    tests = Path(__file__).resolve().parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests), str(tests.parent)])}
    result = subprocess.run(
        [sys.executable, "-c", _SERVING, nats_url, database_url, sandbox.url, str(keyring_file)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    probe = json.loads(result.stdout.strip().splitlines()[-1])
    assert probe["replies"] == {
        "put_app": "ProviderAppInfo",
        "resolve": "ResolveReply",
        "refresh": "RefreshReply",
        "list": "ConnectionList",
        "default": "ConnectionInfo",
        "revoke": "OkReply",
        "remove": "ConnectionInfo",
        "providers": "TenantProviderList",
        "enable": "ProviderEnablement",
        "webhook": "WebhookVerdict",
        "delete_app": "ProviderAppDeleted",
    }, probe
    assert probe["sqlalchemy"] is False
