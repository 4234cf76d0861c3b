"""The runtime's psycopg pools while Postgres cannot be reached: every unit of work fails soon."""

import asyncio
import socket
import time

import psycopg
import pytest

from grantline.runtime.db.driver import CHECKOUT_TIMEOUT_SECONDS, DriverPool


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_each_unit_of_work_fails_within_the_checkout_timeout_while_postgres_is_down() -> None:
    # psycopg_pool's default would hold the third and later requests for 30 s each (measured on the
    # gateway); an API request must get its 503 within seconds.
    url = f"postgresql://grantline@127.0.0.1:{_closed_port()}/grantline"
    pool = DriverPool(url, max_size=2, application_name="down-test", checkout_timeout=0.5)
    try:
        for open_unit in (pool.transaction, pool.single_statements, pool.transaction, pool.transaction):
            started = time.monotonic()
            with pytest.raises(psycopg.OperationalError):
                async with open_unit() as conn:
                    await conn.execute("SELECT 1")
            assert time.monotonic() - started < 3
    finally:
        await asyncio.wait_for(pool.close(), timeout=10)
    assert CHECKOUT_TIMEOUT_SECONDS <= 10


async def test_a_pool_serves_units_of_work_once_postgres_answers(database_url: str) -> None:
    pool = DriverPool(database_url, max_size=2, application_name="up-test", checkout_timeout=0.5)
    try:
        async with pool.transaction() as conn:
            cursor = await conn.execute("SELECT 41 + 1")
            assert await cursor.fetchone() == (42,)
    finally:
        await pool.close()
