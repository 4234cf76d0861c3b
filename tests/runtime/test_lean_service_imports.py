"""`grantline run` keeps what a service does not use out of its process (issue 21 item 6: RSS at rest)."""

import base64
import json
import os
import secrets
import subprocess
import sys
import textwrap

import pytest

from grantline.cli.services import ROLES
from grantline.runner_auth.adapters.nats_jwt import new_account_seed
from tests.fixtures.run_grants import SIGNING_KEYS, VERIFICATION_KEYS

# A fresh interpreter: the test session itself has everything loaded.
_PROBE = textwrap.dedent(
    """
    import json, sys
    import grantline.cli.service_entry
    # What run_service imports before it builds the runtime, then the service's own wiring.
    from grantline.runtime.nats.tls import NatsTlsError
    from grantline.runtime.service_runtime import StartUpError
    from grantline.runtime.settings import KeySetError, MissingProductionSetting
    import grantline.refresher.app
    print(json.dumps(sorted({name.split(".")[0] for name in sys.modules} | set(sys.modules))))
    """
)


def test_a_service_that_signs_no_grant_and_exports_no_span_loads_neither_library() -> None:
    result = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, check=True)
    loaded = set(json.loads(result.stdout))
    assert "jwt" not in loaded  # PyJWT: only services that sign or verify run grants
    assert "cryptography" not in loaded
    assert "opentelemetry.sdk" not in loaded  # only when spans are exported somewhere


def test_runner_auth_verifies_callouts_without_the_cryptography_package() -> None:
    # Its JWTs are nkeys' Ed25519, which PyNaCl verifies; cryptography's Rust library is 5 MB at rest.
    probe = "import json, sys, grantline.runner_auth.app; print(json.dumps('cryptography' in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) is False


_WITHOUT_AIOHTTP = textwrap.dedent(
    """
    import asyncio, importlib, json, sys
    from grantline.cli.service_entry import leave_out_aiohttp
    from grantline.cli.services import ROLES

    leave_out_aiohttp()
    offline = [role for role in ROLES.values() if not role.calls_out_over_http]
    for role in offline:
        importlib.import_module(f"grantline.{role.module}.app")

    async def connect() -> bool:
        import nats

        nc = await nats.connect(sys.argv[1])
        await nc.flush()
        await nc.close()
        return True

    print(json.dumps({
        "roles": [role.name for role in offline],
        "aiohttp": "aiohttp" in sys.modules and sys.modules["aiohttp"] is not None,
        "connected": asyncio.run(connect()),
    }))
    """
)


def test_services_that_make_no_http_calls_run_without_aiohttp(nats_url: str) -> None:
    # nats-py imports aiohttp for a websocket transport Grantline never uses; `grantline run` leaves it
    # out of these services, and NATS still works without it.
    result = subprocess.run(
        [sys.executable, "-c", _WITHOUT_AIOHTTP, nats_url], capture_output=True, text=True, check=True
    )
    probe = json.loads(result.stdout)
    assert set(probe["roles"]) == {"refresher", "audit", "satisfaction", "runner-auth", "auth-gateway"}
    assert probe == {**probe, "aiohttp": False, "connected": True}


_STATELESS = textwrap.dedent(
    """
    import json, sys
    from grantline.cli.services import ROLES

    stateless = [role for role in ROLES.values() if not role.stateful]
    runtimes = [role.runtime_factory()() for role in stateless]
    print(json.dumps({
        "roles": [role.name for role in stateless],
        "databases": [runtime.database is not None for runtime in runtimes],
        "loaded": sorted(name for name in ("sqlalchemy", "psycopg", "psycopg_pool") if name in sys.modules),
    }))
    """
)


def test_a_stateless_service_loads_no_database_library() -> None:
    # SQLAlchemy and psycopg are about 25 MB at rest; the proxy keeps no state and must not carry them.
    env = {
        **os.environ,
        "GRANTLINE_ENVIRONMENT": "development",
        "GRANTLINE_NATS_ALLOW_PLAINTEXT": "true",
        "GRANTLINE_RUN_GRANT_VERIFICATION_KEYS": json.dumps(VERIFICATION_KEYS),
    }
    result = subprocess.run(
        [sys.executable, "-c", _STATELESS], capture_output=True, text=True, env=env, check=True
    )
    probe = json.loads(result.stdout)
    assert probe == {"roles": ["proxy"], "databases": [False], "loaded": []}


# Every service with state runs on psycopg alone (runtime.driver_transaction / single_statement).
_ON_PSYCOPG_ALONE = tuple(role.name for role in ROLES.values() if role.stateful)

_BUILT = textwrap.dedent(
    """
    import json, sys
    from grantline.cli.service_entry import leave_out_aiohttp, leave_out_pydantic_v1
    from grantline.cli.services import ROLES

    role = ROLES[sys.argv[1]]
    if not role.calls_out_over_http:
        leave_out_aiohttp()
    leave_out_pydantic_v1()
    runtime = role.runtime_factory()()
    if runtime._http_app is None:
        import grantline.runtime.health_server  # what serve() loads to answer probes
    else:
        runtime.http_application()
    frameworks = ("uvicorn", "starlette", "fastapi", "click", "python_multipart", "anyio")
    print(json.dumps({
        "sqlalchemy": "sqlalchemy" in sys.modules,
        "pydantic_v1": sys.modules.get("pydantic.v1") is not None,
        "http_framework": sorted(name for name in frameworks if name in sys.modules),
    }))
    """
)


def _built(service: str) -> dict[str, object]:
    env = {
        **os.environ,
        "GRANTLINE_ENVIRONMENT": "development",
        "GRANTLINE_NATS_ALLOW_PLAINTEXT": "true",
        # satisfaction signs run grants and runner-auth callout answers: neither builds without its key.
        "GRANTLINE_RUN_GRANT_SIGNING_KEYS": json.dumps(SIGNING_KEYS),
        "GRANTLINE_RUN_GRANT_VERIFICATION_KEYS": json.dumps(VERIFICATION_KEYS),
        "GRANTLINE_RUNNER_AUTH_ISSUER_SEED": new_account_seed(),
        "GRANTLINE_MASTER_KEYRING": json.dumps(
            {"active": "mk-1", "keys": {"mk-1": base64.b64encode(secrets.token_bytes(32)).decode()}}
        ),
    }
    result = subprocess.run(
        [sys.executable, "-c", _BUILT, service], capture_output=True, text=True, env=env, check=True
    )
    probe: dict[str, object] = json.loads(result.stdout)
    return probe


@pytest.mark.parametrize("service", _ON_PSYCOPG_ALONE)
def test_a_service_on_psycopg_alone_loads_no_sqlalchemy(service: str) -> None:
    # About 20 MB at rest. The runtime loads it only on the first runtime.transaction() or sessions().
    assert _built(service)["sqlalchemy"] is False


# The services that answer only probes and scrapes over HTTP (the gateway and the proxy serve APIs).
_WITHOUT_AN_API = ("vault", "refresher", "notifier", "satisfaction", "runner-auth", "audit")


@pytest.mark.parametrize("service", _WITHOUT_AN_API)
def test_a_service_without_an_api_loads_no_http_framework(service: str) -> None:
    # uvicorn, Starlette and what they bring are about 3.5 MB at rest; runtime/health_server.py
    # answers /healthz, /readyz and /metrics with h11 instead.
    assert _built(service)["http_framework"] == []


_OPENAPI = textwrap.dedent(
    """
    import hashlib, json, sys
    if sys.argv[1] == "lean":
        from grantline.cli.service_entry import leave_out_pydantic_v1

        leave_out_pydantic_v1()
    from grantline.auth_gateway.entrypoints.http.api import create_api

    document = json.dumps(create_api().openapi(), sort_keys=True).encode()
    print(json.dumps({
        "openapi": hashlib.sha256(document).hexdigest(),
        "pydantic_v1": sys.modules.get("pydantic.v1") is not None,
    }))
    """
)


def test_the_gateway_builds_the_same_api_without_pydantic_v1() -> None:
    # FastAPI imports pydantic.v1 (1.7 MB) only to look for v1 models among route annotations.
    def probe(mode: str) -> dict[str, object]:
        result = subprocess.run(
            [sys.executable, "-c", _OPENAPI, mode], capture_output=True, text=True, check=True
        )
        answer: dict[str, object] = json.loads(result.stdout)
        return answer

    lean, full = probe("lean"), probe("full")
    assert lean["openapi"] == full["openapi"]
    assert (lean["pydantic_v1"], full["pydantic_v1"]) == (False, True)


@pytest.mark.parametrize("service", ("auth-gateway", "proxy", *_WITHOUT_AN_API))
def test_no_service_loads_pydantic_v1(service: str) -> None:
    assert _built(service)["pydantic_v1"] is False
