"""The engine under the hedge policy, in process, against the scripted provider: a first token
on time needs no hedge; a late one starts the hedge model, the first to produce a token
answers and the other is stopped and billed for what it used; failures, the budget, the
deadline and the caller leaving end as the engine's docstring says, with nothing left reserved.

A `Stall` or a `Gate` makes a first token late for as long as the test wants, so the hedge's
delay (20 ms of the event loop's clock) is the only time these tests wait, and no assertion
depends on how long anything took.
"""

from __future__ import annotations

import asyncio

import pytest

from fareway.core.errors import AllCandidatesFailed, StreamBroken
from fareway.providers.base import UsageReport
from fareway.routing.tokens import estimate_tokens
from fareway.server.engine.events import (
    Billed,
    Delta,
    FallbackTaken,
    Finished,
    GenerationEvent,
    Hedged,
    Routed,
)
from tests.fakes.scripted import Fail, Gate, Stall, answer, broken, model
from tests.server.engine.rig import FAST, SPARE, STRONG, billed, hedged, kinds, rig

LATE = [UsageReport(10, 0), Stall()]  # took the prompt, never answers


def hedge_of(events: list[GenerationEvent]) -> Hedged:
    [hedge] = [e for e in events if isinstance(e, Hedged)]
    return hedge


def total(events: list[GenerationEvent]) -> int:
    last = events[-1]
    assert isinstance(last, Finished)
    return last.total.cost_micros


def others() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]


async def test_a_first_token_on_time_needs_no_hedge() -> None:
    r = await rig({"fast": [answer("Hi")], "strong": []})

    events, error = await r.play(hedged(FAST, STRONG, after_ms=60_000))

    assert error is None
    assert kinds(events) == [Routed, Delta, Billed, Finished]
    assert r.provider.calls_to("strong") == []


async def test_a_late_first_token_is_hedged_and_the_hedge_wins() -> None:
    r = await rig({"fast": [LATE], "strong": [answer("Hello", ", world")]})

    events, error = await r.play(hedged(FAST, STRONG))

    assert error is None
    assert hedge_of(events).winner == "strong"
    assert (hedge_of(events).from_model, hedge_of(events).to_model) == ("fast", "strong")
    assert hedge_of(events).after_ms >= 20
    assert kinds(events)[:2] == [Routed, Hedged], "the caller learns who answers first"
    assert "".join(e.text for e in events if isinstance(e, Delta)) == "Hello, world"
    [loser] = r.provider.calls_to("fast")
    assert loser.stopped_early
    # The loser took the prompt: billed for it, in its own usage event.
    assert [e.usage.model for e in events if isinstance(e, Billed)] == ["fast", "strong"]
    assert total(events) == billed(events)
    assert await r.figures() == (billed(events), 0)
    assert others() == []


async def test_the_late_first_attempt_may_still_win_the_race() -> None:
    first, second = asyncio.Event(), asyncio.Event()
    r = await rig(
        {"fast": [[Gate(first), *answer("Fast")]], "strong": [[UsageReport(10, 0), Gate(second)]]}
    )

    play = asyncio.create_task(r.play(hedged(FAST, STRONG)))
    await r.called["strong"].wait()  # the hedge has started
    first.set()
    events, error = await play

    assert error is None
    assert hedge_of(events).winner == "fast"
    assert [e.text for e in events if isinstance(e, Delta)] == ["Fast"]
    [loser] = r.provider.calls_to("strong")
    assert loser.stopped_early
    assert await r.figures() == (billed(events), 0)
    assert total(events) == billed(events)


async def test_no_hedge_when_the_budget_cannot_cover_both() -> None:
    decision = hedged(FAST, STRONG)
    gate = asyncio.Event()
    r = await rig(
        {"fast": [[Gate(gate), *answer("Hi")]], "strong": []},
        cap_micros=decision.estimated_cost_micros(FAST) + 10,
    )

    play = asyncio.create_task(r.play(decision))
    await r.called["fast"].wait()
    await asyncio.sleep(0.05)  # well past the hedge's delay
    gate.set()
    events, error = await play

    assert error is None
    assert not [e for e in events if isinstance(e, Hedged)]
    assert r.provider.calls_to("strong") == []
    assert await r.figures() == (billed(events), 0)


async def test_the_hedge_goes_to_the_next_model_the_budget_covers() -> None:
    cheap = model("cheap")  # fast's prices: strong's would not fit beside fast
    decision = hedged(FAST, STRONG, also=(cheap,))
    cap = decision.estimated_cost_micros(FAST) + decision.estimated_cost_micros(cheap)
    r = await rig({"fast": [LATE], "cheap": [answer("Cheap")], "strong": []}, cap_micros=cap)

    events, error = await r.play(decision)

    assert error is None
    assert (hedge_of(events).to_model, hedge_of(events).winner) == ("cheap", "cheap")
    assert r.provider.calls_to("strong") == []
    assert await r.figures() == (billed(events), 0)


async def test_the_first_failing_after_the_hedge_started_leaves_the_hedge_to_answer() -> None:
    gate = asyncio.Event()
    r = await rig({"fast": [[Gate(gate), Fail()]], "strong": [[Gate(gate), *answer("Hi")]]})

    play = asyncio.create_task(r.play(hedged(FAST, STRONG)))
    await r.called["strong"].wait()
    gate.set()
    events, error = await play

    assert error is None
    assert hedge_of(events).winner == "strong"
    assert [e.text for e in events if isinstance(e, Delta)] == ["Hi"]
    assert await r.figures() == (billed(events), 0)


async def test_both_failing_before_a_token_falls_back_past_the_hedge_model() -> None:
    gate = asyncio.Event()
    r = await rig(
        {
            "fast": [[Gate(gate), Fail()]],
            "strong": [[Gate(gate), Fail()]],
            "spare": [answer("Spare")],
        }
    )

    play = asyncio.create_task(r.play(hedged(FAST, STRONG, SPARE)))
    await r.called["strong"].wait()
    gate.set()
    events, error = await play

    assert error is None
    assert FallbackTaken("fast", "spare", "overloaded: scripted failure") in events
    assert [e.text for e in events if isinstance(e, Delta)] == ["Spare"]
    assert len(r.provider.calls_to("strong")) == 1
    assert await r.figures() == (billed(events), 0)


async def test_both_failing_with_nothing_left_fails_the_request() -> None:
    gate = asyncio.Event()
    r = await rig({"fast": [[Gate(gate), Fail()]], "strong": [[Gate(gate), Fail()]]})

    play = asyncio.create_task(r.play(hedged(FAST, STRONG)))
    await r.called["strong"].wait()
    gate.set()
    events, error = await play

    assert isinstance(error, AllCandidatesFailed)
    assert kinds(events) == [Routed]
    assert await r.figures() == (0, 0)


async def test_the_winner_breaking_mid_answer_is_stream_broken_and_both_are_billed() -> None:
    r = await rig({"fast": [LATE], "strong": [broken("Half", input_tokens=10)]})

    events, error = await r.play(hedged(FAST, STRONG))

    assert isinstance(error, StreamBroken)
    assert kinds(events)[:3] == [Routed, Hedged, Delta]
    spent, reserved = await r.figures()
    assert reserved == 0
    assert spent == billed(events) + STRONG.price.cost_micros(10, estimate_tokens("Half"))
    assert others() == []


async def test_the_caller_leaving_during_the_race_stops_both() -> None:
    r = await rig({"fast": [LATE], "strong": [[UsageReport(10, 0), Stall()]]})

    await r.leave_when_stalled(hedged(FAST, STRONG), "strong")

    assert all(c.stopped_early for c in r.provider.calls)
    spent, reserved = await r.figures()
    assert reserved == 0
    assert spent == FAST.price.cost_micros(10, 0) + STRONG.price.cost_micros(10, 0)
    assert others() == []


async def test_the_deadline_passing_during_the_race_stops_both_with_nothing_held() -> None:
    r = await rig({"fast": [LATE], "strong": [LATE]})

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.1):
            await r.play(hedged(FAST, STRONG), timeout_s=0.1)

    assert len(r.provider.calls) == 2
    assert all(c.stopped_early for c in r.provider.calls)
    _, reserved = await r.figures()
    assert reserved == 0
    assert others() == []


async def test_two_first_tokens_at_once_stream_only_the_winner() -> None:
    gate = asyncio.Event()
    r = await rig(
        {"fast": [[Gate(gate), *answer("Fast")]], "strong": [[Gate(gate), *answer("Strong")]]}
    )

    play = asyncio.create_task(r.play(hedged(FAST, STRONG)))
    await r.called["strong"].wait()
    gate.set()  # both first tokens come in the same turn of the event loop
    events, error = await play

    assert error is None
    winner = hedge_of(events).winner
    assert [e.text for e in events if isinstance(e, Delta)] == [winner.capitalize()]
    [loser] = [c for c in r.provider.calls if c.call.model.id != winner]
    assert loser.stopped_early
    assert await r.figures() == (billed(events), 0)
