"""Checkpoints of one call: none before the interval has passed on the injected clock (or
before CHECKPOINT_EVERY_PIECES pieces), one at a time, and none left running after `stop`.
Observed through a real MemoryLedger: a checkpointed hold that expires is charged its usage."""

from __future__ import annotations

import asyncio

from fareway.budgets.ledger import Limit
from fareway.budgets.memory import MemoryLedger
from fareway.budgets.windows import Window
from fareway.core.clock import ManualClock
from fareway.server.checkpoints import CHECKPOINT_EVERY_PIECES, Checkpoints
from tests.budgets.contract.support import TENANT, figures

TTL_S = 60.0
INTERVAL_S = 1.0


async def expired_charge(ledger: MemoryLedger, clock: ManualClock) -> int:
    """What the hold is charged once it expires: its last checkpoint."""
    clock.advance(TTL_S)
    return (await figures(ledger))["day"][0]


async def setup() -> tuple[MemoryLedger, ManualClock, Checkpoints]:
    clock = ManualClock()
    ledger = MemoryLedger(clock, hold_ttl_s=TTL_S)
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])
    await ledger.hold(TENANT, "h1", 500)
    return ledger, clock, Checkpoints(ledger, clock, TENANT, "h1", INTERVAL_S)


async def test_nothing_is_recorded_before_the_interval() -> None:
    ledger, clock, checkpoints = await setup()
    for _ in range(10):
        checkpoints.tick(lambda: (100, 10))
    await checkpoints.stop()

    assert await expired_charge(ledger, clock) == 0


async def test_one_checkpoint_per_interval_with_the_usage_at_that_moment() -> None:
    ledger, clock, checkpoints = await setup()
    used = {"micros": 0}
    asked: list[int] = []

    def usage() -> tuple[int, int]:
        asked.append(used["micros"])
        return used["micros"], 1

    clock.advance(INTERVAL_S)
    used["micros"] = 120
    checkpoints.tick(usage)
    checkpoints.tick(usage)  # in flight, or not yet due: not asked again
    await asyncio.sleep(0)
    used["micros"] = 999
    checkpoints.tick(usage)  # the interval has not passed again
    await checkpoints.stop()

    assert asked == [120]
    assert await expired_charge(ledger, clock) == 120


async def test_a_fast_stream_checkpoints_every_so_many_pieces() -> None:
    ledger, clock, checkpoints = await setup()
    for piece in range(1, CHECKPOINT_EVERY_PIECES + 1):
        checkpoints.tick(lambda piece=piece: (piece, piece))
    await asyncio.sleep(0)
    await checkpoints.stop()

    assert await expired_charge(ledger, clock) == CHECKPOINT_EVERY_PIECES


async def test_stop_leaves_no_checkpoint_running_and_the_settle_wins() -> None:
    ledger, clock, checkpoints = await setup()
    clock.advance(INTERVAL_S)
    checkpoints.tick(lambda: (300, 30))

    await checkpoints.stop()
    await ledger.settle(TENANT, "h1", 200)
    await asyncio.sleep(0)

    assert await expired_charge(ledger, clock) == 200
    assert not [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
