"""A cap holds under concurrency: 1,000 simultaneous Generate calls from one tenant whose cap
affords about 100 of them, against every ledger backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from fareway.budgets.ledger import Ledger, Limit
from fareway.budgets.memory import MemoryLedger
from fareway.budgets.postgres import PostgresLedger
from fareway.budgets.redis import RedisLedger
from fareway.budgets.sqlite import SqliteLedger
from fareway.budgets.windows import Window
from fareway.core.clock import Clock, ManualClock
from fareway.v1 import router_pb2
from tests.budgets.postgres_db import fresh_schema, server_url
from tests.server.harness import TENANT_KEY, Harness, metadata, user_request

CALLS = 1000
AFFORDABLE = 100
# Sim answers run 45-75 tokens for these test models, so 20 always stops at max_tokens: the
# actual cost then equals the hold, and the most the cap allows is exactly known.
REQUEST = user_request("classify this: spam or not?", max_tokens=20, model="fast-1")

LedgerFactory = Callable[[Clock], Ledger]


@pytest.fixture(
    params=[
        pytest.param("memory"),
        pytest.param("sqlite"),
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
def make_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> LedgerFactory:
    if request.param == "memory":
        return lambda clock: MemoryLedger(clock)
    if request.param == "sqlite":
        return lambda clock: SqliteLedger(tmp_path / "ledger.db", clock)
    if request.param == "postgres":
        url, schema = request.getfixturevalue("postgres_schema")
        return lambda clock: PostgresLedger(url, clock, schema=schema)
    url: str = request.getfixturevalue("redis_url")
    prefix: str = request.getfixturevalue("redis_prefix")
    return lambda clock: RedisLedger(url, clock, prefix=prefix)


@pytest.fixture
async def postgres_schema() -> AsyncIterator[tuple[str, str]]:
    """A PostgreSQL server's URL and a schema of this test's own (dropped afterwards)."""
    url = server_url()
    async with fresh_schema(url) as schema:
        yield url, schema


@pytest.fixture
async def capped(serve: Any, make_ledger: LedgerFactory) -> tuple[Harness, int]:
    """A server whose tenant `acme` can afford AFFORDABLE requests, and one request's cost."""
    clock = ManualClock()
    harness: Harness = await serve(clock=clock, ledger=make_ledger(clock))
    pinned = await harness.router.Route(REQUEST, metadata=metadata(TENANT_KEY))
    cost = pinned.estimated_cost_micros
    await harness.ledger.configure("acme", [Limit(Window.DAY, AFFORDABLE * cost + cost // 2)])
    return harness, cost


async def generate(harness: Harness) -> str:
    """ "served", or the status code name that refused the call."""
    events: list[router_pb2.GenerateEvent] = []
    try:
        async for event in harness.router.Generate(REQUEST, metadata=metadata(TENANT_KEY)):
            events.append(event)
    except grpc.aio.AioRpcError as error:
        return str(error.code().name)
    assert events[-1].WhichOneof("event") == "done"
    return "served"


@pytest.mark.slow
async def test_a_thousand_concurrent_calls_never_pass_the_cap(capped: tuple[Harness, int]) -> None:
    harness, cost = capped

    outcomes = await asyncio.gather(*(generate(harness) for _ in range(CALLS)))

    served = outcomes.count("served")
    assert set(outcomes) <= {"served", "RESOURCE_EXHAUSTED"}
    state = await harness.ledger.state("acme")
    (day,) = state.limits
    assert day.reserved_micros == 0
    assert day.spent_micros == served * cost
    assert day.spent_micros <= day.limit.cap_micros
    assert day.limit.cap_micros - day.spent_micros < cost, "served all the cap allows"
    assert served == AFFORDABLE
