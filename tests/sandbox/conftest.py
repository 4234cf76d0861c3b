"""Fixtures for the sandbox tests: an in-process sandbox, a registered client, and a flow driver."""

import httpx
import pytest
from sandbox_support import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, SANDBOX_URL, FakeClock, Flow

from grantline.providers.catalogue import load_catalogue
from grantline.sandbox import SandboxState, create_sandbox_app


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def state(clock: FakeClock) -> SandboxState:
    sandbox = SandboxState(clock=clock)
    sandbox.register_client(CLIENT_ID, CLIENT_SECRET, redirect_uris=[REDIRECT_URI])
    return sandbox


@pytest.fixture
async def http(state: SandboxState):
    transport = httpx.ASGITransport(app=create_sandbox_app(state))
    async with httpx.AsyncClient(transport=transport, base_url=SANDBOX_URL) as client:
        yield client


@pytest.fixture(scope="session")
def catalogue():
    return load_catalogue(sandbox_url=SANDBOX_URL)


@pytest.fixture
def flow(http, catalogue) -> Flow:
    return Flow(http, catalogue)
