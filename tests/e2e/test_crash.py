"""A server killed with SIGKILL mid-stream (F18, F19): every charge settled before the kill is
still there afterwards, the text its streams had already sent is billed (each stream
checkpointed its usage into its hold), and their holds do not block the tenant for long. With
SQLite the next server on the file settles them at their last checkpoint when it opens it
(their owner is gone); with Redis, shared by replicas that cannot see each other's processes,
they are settled at their last checkpoint when their time-to-live runs out.

Before checkpoints, a killed stream's hold was released: what it had streamed was never
billed, and the tenant was charged only for the requests that had finished."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from fareway.budgets.ledger import BudgetState, Ledger
from fareway.budgets.redis import RedisLedger
from fareway.budgets.windows import Window as LedgerWindow
from fareway.client import AsyncClient, Budget, Decision, StreamEvent, TextDelta, Window
from fareway.core.clock import SystemClock
from fareway.routing.tokens import estimate_prompt_tokens
from tests.e2e.servers import (
    PRICE,
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
DELTAS_BEFORE_KILL = 12  # about 0.6 s of each stream: several checkpoints
CHECKPOINT_INTERVAL_S = 0.1
HOLD_TTL_S = 2  # Redis: how long the killed server's holds outlive their last checkpoint
WITHIN_S = 30  # bound of every wait; the waits usually end far sooner


@dataclass(frozen=True)
class BeforeKill:
    """What was true when the server was killed."""

    settled_micros: int  # the sum of the completed requests' Done.total.cost_micros
    held_micros: int  # the reservations of the streams in flight


async def test_sqlite_ledger_after_kill_9_bills_the_streamed_text_and_settles_holds_on_open(
    fleet: Fleet, tmp_path: Path
) -> None:
    config = write_config(
        tmp_path / "sqlite.yaml",
        ledger={
            "type": "sqlite",
            "path": str(tmp_path / "ledger.db"),
            "checkpoint_interval_s": CHECKPOINT_INTERVAL_S,
        },
        caps_micros={Window.TOTAL: CAP},
        sim=SLOW,
    )
    [first] = await fleet.start(config)

    before = await serve_then_kill(first)

    [second] = await fleet.start(config)
    async with second.client() as client:
        after = limit(await client.get_budget(), Window.TOTAL)
    report("sqlite", before, after.spent_micros)
    assert after.reserved_micros == 0, "the killed server's holds were settled on open"
    assert_streamed_text_billed(before, after.spent_micros)


@pytest.mark.redis
async def test_redis_ledger_after_kill_9_bills_the_streamed_text_once_holds_expire(
    fleet: Fleet, tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    config = write_config(
        tmp_path / "redis.yaml",
        ledger={
            "type": "redis",
            "url": redis_url,
            "prefix": redis_prefix,
            "hold_ttl_s": HOLD_TTL_S,
            "checkpoint_interval_s": CHECKPOINT_INTERVAL_S,
        },
        caps_micros={Window.TOTAL: CAP},
        sim=SLOW,
    )
    ledger = RedisLedger(redis_url, SystemClock(), prefix=redis_prefix)
    await assert_holds_expire_after_kill_9(fleet, config, ledger, "redis")


async def assert_holds_expire_after_kill_9(
    fleet: Fleet, config: Path, ledger: Ledger, backend: str
) -> None:
    """kill -9 mid-stream on a shared ledger whose dead holds expire by time-to-live: every
    settled charge is there at once, the dead server's holds count until their TTL passes, and
    then the streamed text is billed. `ledger` reads the same store (and is closed here)."""
    [first] = await fleet.start(config)
    try:
        await ledger.state(TENANT)  # connected before the kill: read at once after it
        before = await serve_then_kill(first)
        at_kill = window_figures(await ledger.state(TENANT))
    finally:
        await ledger.aclose()

    # Nothing settled them yet: the dead server's holds still count until their TTL passes.
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
    report(backend, before, limit(after, Window.TOTAL).spent_micros)
    assert_streamed_text_billed(before, limit(after, Window.TOTAL).spent_micros)


def assert_streamed_text_billed(before: BeforeKill, spent_after: int) -> None:
    """Every charge settled before the kill, plus, for each stream in flight, at least its
    prompt and one token of its answer (what its checkpoints recorded, at the least); never
    more than the streams had reserved."""
    at_least = STREAMS * PRICE.cost_micros(estimate_prompt_tokens("", [PROMPT]), 1)
    assert spent_after - before.settled_micros >= at_least
    assert spent_after - before.settled_micros <= before.held_micros


def report(ledger: str, before: BeforeKill, spent_after: int) -> None:
    print(
        f"\n{ledger}: settled {before.settled_micros}, held {before.held_micros} at the kill;"
        f" billed {spent_after} after it ({spent_after - before.settled_micros} for the"
        " streams cut short)"
    )


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
