"""The runner SDK as an app runner installs it: the `grantline-contract`, `grantline-nats-fixes` and
`grantline-runner` wheels, built from this checkout, in a bare virtualenv with nats-py and pydantic
from the package index and nothing else, running runs against `grantline dev` (issue 21 item 2).

The test connects a user through the sandbox over HTTP (as the platform and the user's browser would),
then hands the runner identity of dev.json to `runner_sdk_script.py`, run with the virtualenv's python
outside the checkout: one run with the async client and one with the sync client, each checked,
requested, admitted, resolved (the user's sandbox token, on the connection the user made), renewed and
finished.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from e2e_dev_stack import DevStackProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("runner_sdk_script.py")
PROVIDER = "sandbox"
USER = "grace@example.com"
# What pip may install next to the three wheels: nats-py, pydantic and what pydantic needs.
WHEELS = ("grantline-contract", "grantline-nats-fixes", "grantline-runner")
ALLOWED = {
    *WHEELS,
    "nats-py",
    "pydantic",
    "pydantic-core",
    "annotated-types",
    "typing-extensions",
    "typing-inspection",
    "pip",
    "setuptools",
}


def _uv() -> str:
    found = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    assert Path(found).exists(), "uv not found: run ./bin/test once to bootstrap .tools/"
    return found


def _run(*command: str, cwd: Path | None = None, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=180, check=False, **kwargs
    )
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return done


def bare_runner_environment(root: Path) -> Path:
    """A virtualenv holding the three wheels, nats-py and pydantic; its python."""
    wheels = root / "wheels"
    for package in WHEELS:
        _run(_uv(), "build", "--wheel", "--package", package, "-o", str(wheels), cwd=ROOT)
    assert {p.name.split("-")[0] for p in wheels.glob("*.whl")} == {w.replace("-", "_") for w in WHEELS}
    venv = root / "venv"
    _run(sys.executable, "-m", "venv", str(venv))
    python = str(venv / "bin" / "python")
    quiet = ("--quiet", "--disable-pip-version-check")
    _run(python, "-m", "pip", "install", *quiet, "nats-py", "pydantic")  # from the package index
    # Only from the wheel directory: Grantline's packages cannot come from anywhere else.
    only_wheels = ("--no-index", "--find-links", str(wheels))
    _run(python, "-m", "pip", "install", *quiet, *only_wheels, "grantline-runner")
    installed = json.loads(_run(python, "-m", "pip", "list", "--format", "json").stdout)
    names = {item["name"].lower().replace("_", "-") for item in installed}
    assert names <= ALLOWED, f"more than the SDK and its dependencies: {sorted(names - ALLOWED)}"
    assert {*WHEELS, "nats-py", "pydantic"} <= names
    return venv / "bin" / "python"


async def connect_sandbox_user(info: dict[str, Any], user: str) -> str:
    """The platform sets up the sandbox provider app and the user connects it; the connection id."""
    client_id = f"sdk-client-{uuid.uuid4().hex[:8]}"
    client_secret = f"sbx_secret_sdk_{uuid.uuid4().hex}"
    headers = {"Authorization": f"Bearer {info['api_key']}"}
    async with (
        httpx.AsyncClient(base_url=str(info["api_url"]), headers=headers, timeout=30) as api,
        httpx.AsyncClient(base_url=str(info["sandbox_url"]), timeout=30) as sandbox,
        httpx.AsyncClient(timeout=30) as browser,
    ):
        created = await sandbox.post(
            "/_sandbox/clients", json={"client_id": client_id, "client_secret": client_secret}
        )
        assert created.status_code == 201, created.text
        app = await api.put(
            f"/v1/provider-apps/{PROVIDER}",
            json={"client_id": client_id, "client_secret": client_secret, "scopes": ["profile"]},
        )
        assert app.status_code == 200, app.text
        initiated = await api.post(
            "/v1/connections/initiate",
            json={"user_id": user, "provider": PROVIDER, "return_to": "http://127.0.0.1:3000/sdk/done"},
        )
        assert initiated.status_code == 200, initiated.text
        authorized = await browser.get(initiated.json()["authorize_url"])
        assert authorized.status_code == 302, authorized.text
        landed = await browser.get(authorized.headers["location"], follow_redirects=False)
        assert landed.status_code == 303, landed.text
        outcome = {k: v[0] for k, v in parse_qs(urlsplit(landed.headers["location"]).query).items()}
        assert outcome["status"] == "connected", outcome
        return str(initiated.json()["connection_id"])


@pytest.fixture(scope="module")
def bare_runner_python(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Future[Path]]:
    """The bare virtualenv's python, built in a thread while `grantline dev` starts (requested first)."""
    with ThreadPoolExecutor(1) as pool:
        yield pool.submit(bare_runner_environment, tmp_path_factory.mktemp("runner-sdk"))


async def test_the_runner_wheel_alone_runs_runs_against_grantline_dev(
    bare_runner_python: Future[Path], dev_stack: DevStackProcess, tmp_path: Path
) -> None:
    python = bare_runner_python.result(timeout=300)
    info = dev_stack.info
    connection_id = await connect_sandbox_user(info, USER)
    job = {
        **{key: info[key] for key in ("nats_url", "nats_user", "nats_password", "tenant_id")},
        "nats_tls": info.get("nats_tls"),
        "user_id": USER,
        "app_id": "sdk-wheel-app",
        "provider": PROVIDER,
    }
    # Outside the checkout and with no PYTHONPATH: only the virtualenv's packages are importable.
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    ran = _run(str(python), str(SCRIPT), cwd=tmp_path, input=json.dumps(job), env=env)
    result = json.loads(ran.stdout)
    print(f"runner script: {result['async_seconds']:.1f} s async, {result['seconds']:.1f} s in all")

    assert result["importable"] == []  # none of the service stack came along
    assert result["async"]["satisfied"] is True
    for flavour in ("async", "sync"):
        run = result[flavour]
        assert run["admitted"] is True, run
        assert run["token_looks_right"] is True, run
        assert run["connection_id"] == connection_id, run
    assert result["sync"]["renewed"] is True
