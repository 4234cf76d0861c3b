"""Synchronous entry points for the CLI and `grantline dev`: tenant and API-key administration."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from psycopg import IntegrityError

from grantline.auth_gateway.service import tenants
from grantline.runtime.db.driver import DriverConnection, connect

T = TypeVar("T")


def run_in_transaction(database_url: str, work: Callable[[DriverConnection], Awaitable[T]]) -> T:
    """Run `work` in one committed transaction on its own event loop (callable from any thread)."""

    async def main() -> T:
        async with await connect(database_url, application_name="grantline-cli") as conn, conn.transaction():
            return await work(conn)

    # A thread of its own: the caller may already be inside a running event loop.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, main()).result()


def ensure_tenant_with_key(database_url: str, *, name: str, api_key: str) -> str:
    """Create tenant `name` (dev allow-list) holding `api_key` unless both exist; returns the tenant id."""

    async def work(conn: DriverConnection) -> str:
        return await tenants.ensure_tenant_with_key(conn, name=name, api_key=api_key)

    try:
        return run_in_transaction(database_url, work)
    except IntegrityError:
        # Another process created the same tenant or key at the same moment; now it exists.
        return run_in_transaction(database_url, work)
