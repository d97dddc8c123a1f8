"""The PostgreSQL server the postgres ledger tests run against, and a fresh schema per test.

The server is found at `FAREWAY_POSTGRES_URL` (default postgresql://postgres@127.0.0.1:5432/test).
When none answers, the tests that need it skip saying why, unless FAREWAY_REQUIRE_POSTGRES=1
(CI sets it), which makes that a failure. Each test gets a schema of its own, which the
ledger's migration creates on first use and the test drops afterwards (with everything in it),
so tests and concurrent runs never see each other's figures and leave nothing behind.

Fixtures (`postgres_url`, `postgres_schema`) are in tests/budgets/conftest.py; tests in other
folders use `fresh_schema` here.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from fareway.budgets.postgres import address
from tests.budgets.redis_process import free_port
from tests.budgets.tcp_proxy import TcpProxy

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
CONNECT_TIMEOUT_S = 2.0


def server_url() -> str:
    """The URL of a PostgreSQL server that answered, or skip (fail under
    FAREWAY_REQUIRE_POSTGRES=1) saying why. Callable from async fixtures too: the check runs
    its own event loop on a thread of its own."""
    url = os.environ.get("FAREWAY_POSTGRES_URL") or DEFAULT_POSTGRES_URL
    with ThreadPoolExecutor(max_workers=1) as thread:
        problem = thread.submit(asyncio.run, _problem(url)).result()
    if problem:
        message = (
            f"no PostgreSQL at {address(url)} ({problem}): set FAREWAY_POSTGRES_URL or start one"
        )
        if os.environ.get("FAREWAY_REQUIRE_POSTGRES") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return url


async def _problem(url: str) -> str:
    """Why `url` does not answer a query, or '' when it does."""
    try:
        connection = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        return f"{type(error).__name__}: {error}"
    try:
        await connection.fetchval("SELECT 1")
    finally:
        await connection.close()
    return ""


def schema_name() -> str:
    """A schema name no other test uses."""
    return f"fareway_test_{uuid.uuid4().hex[:16]}"


async def drop_schema(url: str, schema: str) -> None:
    """Drop `schema` and everything in it, if it exists."""
    connection = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT_S)
    try:
        await connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await connection.close()


@asynccontextmanager
async def fresh_schema(url: str) -> AsyncIterator[str]:
    """A schema name of this test's own on `url`'s database, dropped when the context ends."""
    schema = schema_name()
    try:
        yield schema
    finally:
        await drop_schema(url, schema)


async def proxy_to(url: str) -> tuple[TcpProxy, str]:
    """A started TcpProxy to `url`'s server on a free port, and `url` pointed at the proxy."""
    parts = urlsplit(url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5432, free_port())
    await proxy.start()
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{proxy.port}" if userinfo else f"127.0.0.1:{proxy.port}"
    proxied = urlunsplit(parts._replace(netloc=netloc))
    return proxy, proxied
