"""FairShare: large requests' steps take turns, and each turn is held as long again as its step
took, so that small requests get the event loop in between. Timed with a ManualClock."""

from __future__ import annotations

import asyncio

import pytest

from fareway.core.clock import ManualClock
from fareway.server.interceptor import FairShare


async def test_steps_take_turns_and_each_turn_is_held_as_long_again() -> None:
    clock = ManualClock()
    share = FairShare(clock)
    order: list[str] = []
    started = clock.monotonic()

    async def large(name: str, took: float) -> None:
        async with share.turn():
            order.append(f"{name} runs")
            clock.advance(took)  # the step's work
            await asyncio.sleep(0)  # a yield inside the step keeps the turn
        order.append(f"{name} done")

    async def small() -> None:
        await asyncio.sleep(0)
        order.append("small runs")

    await asyncio.gather(large("a", 0.004), large("b", 0.002), small())

    assert order.index("small runs") < order.index("b runs"), "small work runs between turns"
    assert order.index("a done") < order.index("b runs"), "one step at a time"
    assert clock.monotonic() - started == pytest.approx(2 * (0.004 + 0.002)), "held as long again"


async def test_a_failing_step_still_gives_up_its_turn() -> None:
    share = FairShare(ManualClock())

    async def failing() -> None:
        async with share.turn():
            raise ValueError("bad body")

    results = await asyncio.gather(failing(), return_exceptions=True)
    async with share.turn():
        pass

    assert isinstance(results[0], ValueError)
