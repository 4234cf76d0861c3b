"""The heavy steps of ``grantline dev``, each run in a short-lived child process.

The supervisor (dev.py) stays running for as long as the stack does, so what it imports it holds:
the permission file's models, TLS certificate generation, the migrations, the gateway's tenant
bootstrap and runner-auth's registry would cost it some 70 MB for steps that run once. Each step
runs here instead (``python -m grantline.cli.dev_setup STEP`` with a JSON request on stdin) and
answers with JSON on stdout. A failure it can explain is one sentence on stderr and exit code 3;
anything else leaves its traceback on stderr, which the supervisor writes to logs/dev.log.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from grantline.cli.dev_credentials import (
    callout_issuer,
    dev_runner_credentials,
    run_grant_key_environment,
    runner_auth_environment,
)
from grantline.cli.services import ROLES

EXPLAINED_FAILURE = 3


def prepare(request: dict[str, Any]) -> dict[str, Any]:
    """Before NATS starts: its users and permissions, its TLS material, every process's NATS identity."""
    from grantline.runtime.nats.permissions import load_permissions
    from grantline.runtime.nats.server_config import (
        client_environment,
        load_or_create_passwords,
        render_authorization,
    )

    root = Path(request["data_dir"])
    answer: dict[str, Any] = {"auth_config": None, "tls_files": None, "environments": {}}
    environments: dict[str, dict[str, str]] = {name: {} for name in [*ROLES, "operator"]}
    if request["embedded_nats"]:
        # Embedded NATS runs with the same users and permissions as production (DESIGN section 5);
        # random passwords are generated once and kept beside the data (0600).
        permissions = load_permissions()
        passwords = load_or_create_passwords(root / "nats-users.json", permissions)
        config = root / "nats-auth.conf"
        issuer = callout_issuer(root)
        config.write_text(render_authorization(permissions, passwords, callout_issuer=issuer))
        config.chmod(0o600)
        answer["auth_config"] = str(config)
        for name in environments:
            environments[name].update(client_environment(permissions, name, passwords[name]))
        environments["runner-auth"].update(runner_auth_environment(root, passwords))
        if request["nats_tls"] is not None:
            from grantline.devstack.tls_certificates import ensure_local_certificates

            files = ensure_local_certificates(root / "nats-tls", client=request["nats_tls"] == "mutual")
            answer["tls_files"] = {key: str(value) for key, value in asdict(files).items()}
    for name, extra in run_grant_key_environment(root).items():
        environments[name].update(extra)
    answer["environments"] = environments
    return answer


def finish(request: dict[str, Any]) -> dict[str, Any]:
    """Once NATS and Postgres run: the database, the migrations and streams, the dev tenant, its runner."""
    import asyncio

    from pydantic import SecretStr

    from grantline.cli.migrate import MigrateSettings, NatsDeclarationFailed, declare_nats, migrate_all

    database_url = request["database_url"]
    if request["embedded_postgres"]:
        database_url = _create_grantline_database(database_url)
    else:
        _ensure_database(database_url)
    migrate_all(database_url)
    operator = request["operator"]
    tls = {key.removeprefix("GRANTLINE_").lower(): value for key, value in request["nats_tls_env"].items()}
    common: dict[str, Any] = {"nats_url": request["nats_url"], "environment": "development", **tls}
    if operator:
        # Only this step holds the operator's credentials; the services get their own users.
        common.update(
            nats_user=operator["GRANTLINE_NATS_USER"],
            nats_password=SecretStr(operator["GRANTLINE_NATS_PASSWORD"]),
            nats_inbox_prefix=operator["GRANTLINE_NATS_INBOX_PREFIX"],
        )
    try:
        asyncio.run(declare_nats(MigrateSettings(**common)))
    except NatsDeclarationFailed as error:
        _explained(str(error))
    tenant_id = _ensure_dev_tenant(database_url, request["api_key"])
    answer: dict[str, Any] = {"database_url": database_url, "tenant_id": tenant_id, "runner": {}}
    if operator:
        # What an app runner needs to connect (DESIGN section 7): a runner identity of the dev tenant.
        answer["runner"] = dev_runner_credentials(Path(request["data_dir"]), database_url, tenant_id)
    return answer


def _create_grantline_database(server_url: str) -> str:
    """The ``grantline`` database on the embedded server (given its ``postgres`` URL), made once."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(server_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = 'grantline'").fetchone()
        if exists is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier("grantline")))
    return server_url.rsplit("/", 1)[0] + "/grantline"


def _ensure_database(database_url: str) -> None:
    """A given ``GRANTLINE_DATABASE_URL``'s database, created when the server has none of that name;
    a server that cannot be reached ends the start in one sentence."""
    import psycopg
    from psycopg import conninfo, sql

    params = conninfo.conninfo_to_dict(database_url)
    name = params.get("dbname")
    where = f"{params.get('host', 'localhost')}:{params.get('port', 5432)}"
    try:
        with psycopg.connect(database_url, connect_timeout=5):
            return
    except psycopg.OperationalError as error:
        if not name or f'database "{name}" does not exist' not in str(error):
            _explained(
                f"cannot connect to Postgres at {where} ({_reason(error)}); check GRANTLINE_DATABASE_URL"
            )
    try:
        server = conninfo.make_conninfo(database_url, dbname="postgres")
        with psycopg.connect(server, autocommit=True, connect_timeout=5) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(str(name))))
    except psycopg.Error as error:
        _explained(
            f"the database {name!r} does not exist on {where} and could not be created ({_reason(error)}); "
            "create it, or point GRANTLINE_DATABASE_URL at one that exists"
        )


def _reason(error: Exception) -> str:
    # libpq's messages name the host and the cause, never the password.
    first = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return first.rsplit("failed: ", 1)[-1].strip()


def _ensure_dev_tenant(database_url: str, api_key: str) -> str:
    """Create the ``dev`` tenant and its API key (through the gateway's bootstrap, once it exists)."""
    try:
        from grantline.auth_gateway.bootstrap import ensure_tenant_with_key
    except ImportError:
        return "dev"
    return str(ensure_tenant_with_key(database_url, name="dev", api_key=api_key))


def _explained(sentence: str) -> None:
    print(sentence, file=sys.stderr)
    raise SystemExit(EXPLAINED_FAILURE)


STEPS = {"prepare": prepare, "finish": finish}


if __name__ == "__main__":
    answer_to = sys.stdout
    sys.stdout = sys.stderr  # whatever a step prints must not mix with the answer
    answer = STEPS[sys.argv[1]](json.loads(sys.stdin.read()))
    answer_to.write(json.dumps(answer))
