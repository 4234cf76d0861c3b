"""What the UI tests share: one headless Chromium per module (Debian's, installed when missing), and
the gateway, vault and audit serving the pages with the sandbox provider app set up (`stack`)."""

import pytest
import pytest_asyncio
from playwright.async_api import async_playwright
from ui_support import CHROMIUM_ARGS, ensure_chromium, ui_stack


@pytest.fixture
async def stack(nats_url, database_url, tmp_path):
    async with ui_stack(nats_url, database_url, tmp_path) as live:
        await live.configure_sandbox_app()
        yield live


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def browser():
    executable = ensure_chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        await launched.close()
