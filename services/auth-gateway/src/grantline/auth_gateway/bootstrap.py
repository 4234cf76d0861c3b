"""Synchronous entry points for the CLI and `grantline dev`: tenant and API-key administration."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from grantline.auth_gateway.service import tenants
from grantline.runtime.db.engine import create_engine, session_factory, transaction

T = TypeVar("T")


def run_in_transaction(database_url: str, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in one committed transaction on its own event loop (callable from any thread)."""

    async def main() -> T:
        engine = create_engine(database_url, pool_size=1, application_name="grantline-cli")
        try:
            async with transaction(session_factory(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    # A thread of its own: the caller may already be inside a running event loop.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result()


def ensure_tenant_with_key(database_url: str, *, name: str, api_key: str) -> str:
    """Create tenant `name` (dev allow-list) holding `api_key` unless both exist; returns the tenant id."""

    async def work(session: AsyncSession) -> str:
        return await tenants.ensure_tenant_with_key(session, name=name, api_key=api_key)

    try:
        return run_in_transaction(database_url, work)
    except IntegrityError:
        # Another process created the same tenant or key at the same moment; now it exists.
        return run_in_transaction(database_url, work)
