"""Replicas sharing one Redis ledger keep a tenant inside its cap under concurrent load (F18,
F19): three `fareway serve` processes, hammered together by many more requests than the cap
affords, serve exactly what it affords and refuse the rest with RESOURCE_EXHAUSTED."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest

from fareway.budgets.ledger import BudgetState, LimitState
from fareway.budgets.redis import RedisLedger
from fareway.budgets.windows import Window as LedgerWindow
from fareway.client import AsyncClient, ResourceExhausted, Window
from fareway.core.clock import SystemClock
from tests.e2e.servers import (
    INSTANT,
    TENANT,
    Fleet,
    generate_to_done,
    request_cost_micros,
    write_config,
)

pytestmark = [pytest.mark.redis, pytest.mark.slow]

REPLICAS = 3
REQUESTS = 600
AFFORDABLE = 100  # requests the cap pays for
PROMPT = "Name a colour."
MAX_TOKENS = 20  # every sim answer is longer: each request costs exactly its reservation


@dataclass(frozen=True)
class Served:
    """A request that was answered: by which replica, its reservation (the decision's
    estimate) and its charge."""

    replica: int
    estimated_micros: int
    cost_micros: int
    stop_reason: str


async def test_replicas_sharing_a_redis_ledger_never_pass_the_cap(
    fleet: Fleet, tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    cost = request_cost_micros(PROMPT, MAX_TOKENS)
    cap = AFFORDABLE * cost + cost // 2  # half a request to spare: a bound the cap must hold
    # The day cap under test, and an equal total cap: should the run straddle midnight UTC,
    # the total window still holds every charge and the cap still binds.
    config = write_config(
        tmp_path / "replicas.yaml",
        ledger={"type": "redis", "url": redis_url, "prefix": redis_prefix},
        caps_micros={Window.DAY: cap, Window.TOTAL: cap},
        sim=INSTANT,
    )
    servers = await fleet.start(config, count=REPLICAS)

    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(s.client()) for s in servers]
        outcomes = await hammer(clients, REQUESTS)
    served = [o for o in outcomes if o is not None]
    refused = len(outcomes) - len(served)

    # What the clients saw: each answer cost exactly what was reserved for it.
    assert {(s.estimated_micros, s.cost_micros, s.stop_reason) for s in served} == {
        (cost, cost, "max_tokens")
    }

    # What the shared ledger holds: every call has ended, so every hold has been settled.
    ledger = RedisLedger(redis_url, SystemClock(), prefix=redis_prefix)
    try:
        state = await ledger.state(TENANT)
    finally:
        await ledger.aclose()
    total = window(state, LedgerWindow.TOTAL)
    by_replica = [sum(s.replica == r for s in served) for r in range(REPLICAS)]
    print(  # the figures, for the record (pytest -s)
        f"\nserved {len(served)} (by replica: {by_replica}), refused {refused}, spent "
        f"{total.spent_micros} of a cap of {cap} micro-USD at {cost} a request"
    )
    for lim in state.limits:
        assert lim.spent_micros <= cap, f"{lim.limit.window} spend passed the cap"
        assert lim.reserved_micros == 0, "a hold outlived its call"
    assert cap - total.spent_micros < cost, "refused although the cap still paid for one more"
    assert total.spent_micros == len(served) * cost, "every answer charged, nothing else"
    assert len(served) == AFFORDABLE
    assert refused == REQUESTS - AFFORDABLE


async def hammer(clients: list[AsyncClient], count: int) -> list[Served | None]:
    """`count` concurrent requests spread round-robin over `clients`, alternately Complete and
    Generate; None for each refused with RESOURCE_EXHAUSTED. Any other error fails the test
    (the task group re-raises it)."""

    async def one(i: int) -> Served | None:
        replica = i % len(clients)
        client = clients[replica]
        try:
            if i % 2:
                answer = await client.complete(PROMPT, max_tokens=MAX_TOKENS)
                estimated = answer.decision.estimated_cost_micros
                return Served(replica, estimated, answer.total.cost_micros, answer.stop_reason)
            decision, done = await generate_to_done(client, PROMPT, MAX_TOKENS)
            estimated = decision.estimated_cost_micros
            return Served(replica, estimated, done.total.cost_micros, done.stop_reason)
        except ResourceExhausted:
            return None

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(one(i)) for i in range(count)]
    return [task.result() for task in tasks]


def window(state: BudgetState, which: LedgerWindow) -> LimitState:
    """The state's limit on `which`."""
    [found] = [s for s in state.limits if s.limit.window is which]
    return found
