"""One ledger per backend for every contract test: memory, sqlite (a file in tmp_path), redis
(a real server, a key prefix of its own) and postgres (a real server, a schema of its own). A
test that needs several ledgers sharing one store asks for `open_ledger`; the memory backend
hands back its one instance."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fareway.budgets.ledger import Ledger
from fareway.budgets.memory import MemoryLedger
from fareway.budgets.postgres import PostgresLedger
from fareway.budgets.redis import RedisLedger
from fareway.budgets.sqlite import SqliteLedger
from fareway.core.clock import ManualClock
from tests.budgets.contract.support import START, TTL_S, OpenLedger


@dataclass(frozen=True)
class Store:
    """Where a backend keeps its figures; every ledger opened on it shares them."""

    kind: str
    sqlite_path: Path
    redis_url: str = ""
    redis_prefix: str = ""
    postgres_url: str = ""
    postgres_schema: str = ""


@pytest.fixture(
    params=[
        "memory",
        "sqlite",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def ledger_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(ledger_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    if ledger_kind == "postgres":
        url = request.getfixturevalue("postgres_url")
        schema = request.getfixturevalue("postgres_schema")
        return Store(ledger_kind, tmp_path / "ledger.db", postgres_url=url, postgres_schema=schema)
    if ledger_kind != "redis":
        return Store(ledger_kind, tmp_path / "ledger.db")
    # Resolved here, not in the signature, so that only the redis runs need (or skip on) Redis.
    url = request.getfixturevalue("redis_url")
    prefix = request.getfixturevalue("redis_prefix")
    return Store(ledger_kind, tmp_path / "ledger.db", url, prefix)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def open_ledger(store: Store, clock: ManualClock) -> AsyncIterator[OpenLedger]:
    """Each call opens another ledger (its own connection) on the test's store."""
    memory = MemoryLedger(clock, hold_ttl_s=TTL_S)
    opened: list[Ledger] = []

    def open_one() -> Ledger:
        ledger: Ledger
        if store.kind == "memory":
            return memory
        if store.kind == "sqlite":
            ledger = SqliteLedger(store.sqlite_path, clock, hold_ttl_s=TTL_S)
        elif store.kind == "postgres":
            ledger = PostgresLedger(
                store.postgres_url, clock, hold_ttl_s=TTL_S, schema=store.postgres_schema
            )
        else:
            ledger = RedisLedger(
                store.redis_url, clock, hold_ttl_s=TTL_S, prefix=store.redis_prefix
            )
        opened.append(ledger)
        return ledger

    yield open_one
    for ledger in opened:
        await ledger.aclose()


@pytest.fixture
def ledger(open_ledger: OpenLedger) -> Ledger:
    return open_ledger()
