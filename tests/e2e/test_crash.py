"""A server killed with SIGKILL mid-stream (F18, F19): every charge settled before the kill is
still there afterwards, and the holds of the streams it was serving do not block the tenant
for long. With SQLite the next server on the file releases them when it opens it (their owner
is gone); with Redis, shared by replicas that cannot see each other's processes, they expire
after the hold time-to-live."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from fareway.budgets.ledger import BudgetState
from fareway.budgets.redis import RedisLedger
from fareway.budgets.windows import Window as LedgerWindow
from fareway.client import AsyncClient, Budget, Decision, StreamEvent, TextDelta, Window
from fareway.core.clock import SystemClock
from tests.e2e.servers import (
    TENANT,
    Fleet,
    Server,
    Sim,
    eventually,
    generate_to_done,
    limit,
    total_cost,
    write_config,
)

pytestmark = pytest.mark.slow

# 20 tokens a second: a short answer ends in a fraction of a second, a long one would take ten.
SLOW = Sim(ttft_ms=0, tokens_per_second=20)
CAP = 10_000_000  # $10: never in the way
PROMPT = "Tell me about the river."
COMPLETED = 3  # requests that finish, and are settled, before the kill
COMPLETED_MAX_TOKENS = 4
STREAMS = 4  # requests in flight at the kill
STREAM_MAX_TOKENS = 200
DELTAS_BEFORE_KILL = 2
HOLD_TTL_S = 2  # Redis: how long the killed server's holds outlive it
WITHIN_S = 30  # bound of every wait; the waits usually end far sooner


@dataclass(frozen=True)
class BeforeKill:
    """What was true when the server was killed."""

    settled_micros: int  # the sum of the completed requests' Done.total.cost_micros
    held_micros: int  # the reservations of the streams in flight


async def test_sqlite_ledger_after_kill_9_keeps_charges_and_releases_holds(
    fleet: Fleet, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path / "sqlite.yaml",
        ledger={"type": "sqlite", "path": str(tmp_path / "ledger.db")},
        caps_micros={Window.TOTAL: CAP},
        sim=SLOW,
    )
    [first] = await fleet.start(config)

    before = await serve_then_kill(first)

    [second] = await fleet.start(config)
    async with second.client() as client:
        after = limit(await client.get_budget(), Window.TOTAL)
    print(f"\nsqlite: settled {before.settled_micros}, held {before.held_micros} at the kill")
    assert after.reserved_micros == 0, "the killed server's holds were released on open"
    # Every charge settled before the kill, and none for the streams that never settled.
    assert after.spent_micros == before.settled_micros


@pytest.mark.redis
async def test_redis_ledger_after_kill_9_keeps_charges_and_holds_expire(
    fleet: Fleet, tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    config = write_config(
        tmp_path / "redis.yaml",
        ledger={
            "type": "redis",
            "url": redis_url,
            "prefix": redis_prefix,
            "hold_ttl_s": HOLD_TTL_S,
        },
        caps_micros={Window.TOTAL: CAP},
        sim=SLOW,
    )
    [first] = await fleet.start(config)
    ledger = RedisLedger(redis_url, SystemClock(), prefix=redis_prefix)
    try:
        await ledger.state(TENANT)  # connected before the kill: read at once after it
        before = await serve_then_kill(first)
        at_kill = window_figures(await ledger.state(TENANT))
    finally:
        await ledger.aclose()

    # Nothing released them: the dead server's holds still count until their TTL passes.
    # (Read a fraction of a second after the holds were taken: well inside HOLD_TTL_S.)
    assert at_kill == (before.settled_micros, before.held_micros)

    [second] = await fleet.start(config)
    async with second.client() as client:
        after = await eventually(
            client.get_budget,
            lambda budget: limit(budget, Window.TOTAL).reserved_micros == 0,
            WITHIN_S,
            "the killed server's holds expired",
        )
    print(f"\nredis: settled {before.settled_micros}, held {before.held_micros} at the kill")
    assert limit(after, Window.TOTAL).spent_micros == before.settled_micros


async def serve_then_kill(server: Server) -> BeforeKill:
    """Complete COMPLETED requests, then start STREAMS long ones; once each has streamed
    some text (so its hold is taken and its answer under way), SIGKILL the server."""
    async with server.client() as client:
        finished = await asyncio.gather(
            *(generate_to_done(client, PROMPT, COMPLETED_MAX_TOKENS) for _ in range(COMPLETED))
        )
        settled = total_cost([done for _, done in finished])
        async with AsyncExitStack() as streams:
            async with asyncio.TaskGroup() as group:  # one failing cancels the others
                entered = [
                    group.create_task(streams.enter_async_context(streaming(client)))
                    for _ in range(STREAMS)
                ]
            held = sum(task.result().estimated_cost_micros for task in entered)
            # The precondition, seen through the server: the completed requests are charged
            # and the streams' holds are taken.
            budget = await client.get_budget()
            assert figures(budget) == (settled, held)
            await server.kill()
        # Leaving `streams` closed the dead calls; the holds were never settled.
    assert settled > 0
    assert held > 0
    return BeforeKill(settled, held)


@asynccontextmanager
async def streaming(client: AsyncClient) -> AsyncIterator[Decision]:
    """A long Generate call that has streamed DELTAS_BEFORE_KILL pieces of text; yields its
    decision and keeps the call open until the context ends (closing it cancels the call)."""
    events: AsyncGenerator[StreamEvent, None] = client.generate(
        PROMPT, max_tokens=STREAM_MAX_TOKENS
    )
    try:
        decision = await asyncio.wait_for(anext(events), WITHIN_S)
        assert isinstance(decision, Decision)
        deltas = 0
        while deltas < DELTAS_BEFORE_KILL:
            event = await asyncio.wait_for(anext(events), WITHIN_S)
            deltas += isinstance(event, TextDelta)
        yield decision
    finally:
        await events.aclose()  # cancels the call; a no-op once its server is dead


def figures(budget: Budget) -> tuple[int, int]:
    """(spent, reserved) on the total window, as the server reports them."""
    total = limit(budget, Window.TOTAL)
    return total.spent_micros, total.reserved_micros


def window_figures(state: BudgetState) -> tuple[int, int]:
    """(spent, reserved) on the total window, as the ledger holds them."""
    [total] = [s for s in state.limits if s.limit.window is LedgerWindow.TOTAL]
    return total.spent_micros, total.reserved_micros
