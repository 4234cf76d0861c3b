"""A live stack for the UI tests: the sandbox provider, the real vault, audit and the gateway on ports.

The gateway is served by uvicorn on the test's own event loop (so in-process Playwright can drive
it); the sandbox runs in a thread of its own, as a provider would be a separate server.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import uvicorn

from grantline.audit.app import create_runtime as create_audit
from grantline.audit.settings import AuditSettings
from grantline.auth_gateway.app import create_runtime as create_gateway
from grantline.auth_gateway.bootstrap import ensure_tenant_with_key
from grantline.auth_gateway.settings import GatewaySettings
from grantline.devstack.embedded import free_port
from grantline.runtime.service_runtime import ServiceRuntime
from grantline.sandbox import SandboxState, create_sandbox_app
from grantline.vault.app import create_runtime as create_vault
from grantline.vault.settings import VaultSettings

if TYPE_CHECKING:
    from playwright.async_api import Page

API_KEY = "glk_ui_tests_key_0123456789abcdefghijklmn"
CLIENT_ID = "ui-tests-client"
CLIENT_SECRET = "sbx_secret_ui_tests_0123456789abcdef"
# What must never appear in a page or a URL: the sandbox's token prefixes and our own credentials.
FORBIDDEN = ("sbx_at_", "sbx_rt_", "sbx_id_", "sbx_key_", CLIENT_SECRET, API_KEY)
# Any credential this deployment mints (API keys, connect-session tokens), not just the test's own.
CREDENTIAL = re.compile(r"glk_[A-Za-z0-9_-]{16,}")
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def ensure_chromium() -> str:
    """Debian's chromium, installed with apt when missing (CI machines start without it)."""
    if not Path(CHROMIUM).exists():
        if shutil.which("apt-get") is None:
            raise RuntimeError("chromium is missing and apt-get is not available to install it")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True)
    return CHROMIUM


# The sandbox's catalogue entry as the pages name it.
SANDBOX = "Sandbox (standard OAuth 2.0)"


async def continue_to_the_sandbox(page: Page, user: str) -> None:
    """On a connect link's page: confirm as ``user``, choose the sandbox, go on to its consent."""
    await page.get_by_role("button", name=f"Continue as {user}").click()
    await page.get_by_role("link", name=f"Authorize {SANDBOX}").click()
    await page.get_by_role("button", name=f"Continue to {SANDBOX}").click()


def assert_no_secret(text: str, where: str) -> None:
    """Fail when a page or URL holds anything that looks like a token, a secret or the API key."""
    for needle in FORBIDDEN:
        assert needle not in text, f"{needle[:8]}... found in {where}"
    assert CREDENTIAL.search(text) is None, f"a glk_ credential found in {where}"


class SandboxServer:
    """The sandbox provider on a free loopback port, served by uvicorn in a thread."""

    def __init__(self) -> None:
        self.state = SandboxState()
        self.url = f"http://127.0.0.1:{free_port()}"
        port = int(self.url.rsplit(":", 1)[1])
        config = uvicorn.Config(
            create_sandbox_app(self.state), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self) -> None:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("sandbox did not start")
            time.sleep(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


@dataclass
class UiStack:
    url: str
    sandbox: SandboxServer
    gateway: ServiceRuntime
    vault: ServiceRuntime
    tenant_id: str

    def api(self) -> httpx.AsyncClient:
        """A client of the live `/v1` API with the tenant key."""
        return httpx.AsyncClient(base_url=self.url, headers={"Authorization": f"Bearer {API_KEY}"})

    async def configure_sandbox_app(self) -> None:
        """The tenant's provider app for `sandbox`, through the public API."""
        async with self.api() as api:
            response = await api.put(
                "/v1/provider-apps/sandbox", json={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
            )
        assert response.status_code == 200, response.text


def _keyring(path: Path) -> Path:
    document = {"active": "mk-ui-1", "keys": {"mk-ui-1": base64.b64encode(secrets.token_bytes(32)).decode()}}
    path.write_text(json.dumps(document))
    return path


@asynccontextmanager
async def ui_stack(
    nats_url: str, database_url: str, tmp_path: Path, *, audit: bool = False
) -> AsyncIterator[UiStack]:
    """Sandbox + vault (+ audit) + gateway, all real, with one tenant holding `API_KEY`."""
    tenant_id = ensure_tenant_with_key(database_url, name="ui-tests", api_key=API_KEY)
    sandbox = SandboxServer()
    sandbox.start()
    port = free_port()
    public_url = f"http://127.0.0.1:{port}"
    sandbox.state.register_client(CLIENT_ID, CLIENT_SECRET, redirect_uris=[f"{public_url}/v1/oauth/callback"])
    sandbox.state.update_settings("standard", {"consent": True})
    common = {
        "nats_url": nats_url,
        "database_url": database_url,
        "environment": "test",
        "database_pool_size": 3,
    }
    vault = create_vault(
        VaultSettings(
            **common,  # type: ignore[arg-type]
            allow_private_provider_urls=True,
            sandbox_url=sandbox.url,
            master_keyring_file=_keyring(tmp_path / "keyring.json"),
            audit_flush_interval_seconds=0.05,
        )
    )
    audit_runtime = (
        create_audit(AuditSettings(**common, audit_retention_interval_seconds=0)) if audit else None
    )  # type: ignore[arg-type]
    gateway = create_gateway(
        GatewaySettings(
            **common,  # type: ignore[arg-type]
            sandbox_url=sandbox.url,
            public_url=public_url,
            allow_private_provider_urls=True,
            bus_timeout_seconds=5,
        )
    )
    server = uvicorn.Server(
        uvicorn.Config(
            gateway.http_application(), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
    )
    started: list[ServiceRuntime] = []
    serving = None
    try:
        for runtime in (vault, audit_runtime, gateway):
            if runtime is not None:
                await runtime.start()
                started.append(runtime)
        serving = asyncio.create_task(server.serve())
        while not server.started:
            await asyncio.sleep(0.01)
        yield UiStack(public_url, sandbox, gateway, vault, tenant_id)
    finally:
        server.should_exit = True
        if serving is not None:
            await serving
        for runtime in reversed(started):
            await runtime.stop()
        sandbox.stop()
