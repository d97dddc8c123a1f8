"""The engine under the fallback policy, in process, against the scripted provider: each way a
request can end gives the events and status the README names, leaves nothing reserved and bills
exactly what the attempts used."""

from __future__ import annotations

import asyncio
from contextlib import aclosing

import pytest

from fareway.core.errors import AllCandidatesFailed, StreamBroken
from fareway.providers.base import TextChunk, UsageReport
from fareway.routing.breaker import Outcome
from fareway.routing.decision import AttemptUsage
from fareway.routing.tokens import estimate_tokens
from fareway.server.engine.events import (
    Billed,
    Delta,
    FallbackTaken,
    Finished,
    GenerationEvent,
    Routed,
)
from tests.fakes.scripted import Fail, Gate, Stall, answer, broken
from tests.server.engine.rig import FAST, SPARE, STRONG, billed, decide, kinds, rig


def others() -> list[asyncio.Task[object]]:
    """Tasks still alive besides the test's own."""
    return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]


async def test_an_answer_streams_and_bills_exactly_its_usage() -> None:
    r = await rig({"fast": [answer("Hello", ", world", input_tokens=10, output_tokens=4)]})

    events, error = await r.play(decide(FAST, STRONG))

    assert error is None
    assert kinds(events) == [Routed, Delta, Billed, Finished]
    assert "".join(e.text for e in events if isinstance(e, Delta)) == "Hello, world"
    usage = AttemptUsage("fast", 10, 4, 10 * 1 + 4 * 5)  # $1 in, $5 out per Mtok
    assert events[-2] == Billed(usage)
    finished = events[-1]
    assert isinstance(finished, Finished)
    assert (finished.stop_reason, finished.total) == ("end_turn", AttemptUsage("", 10, 4, 30))
    assert await r.figures() == (30, 0)
    [call] = r.provider.calls
    assert call.outcome == "finished"
    assert others() == []


async def test_an_error_before_the_first_token_falls_back_to_the_next_planned_model() -> None:
    r = await rig({"fast": [broken()], "strong": [answer("Hi", input_tokens=20)]})

    events, error = await r.play(decide(FAST, STRONG))

    assert error is None
    assert kinds(events) == [Routed, FallbackTaken, Delta, Billed, Finished]
    assert events[1] == FallbackTaken("fast", "strong", "overloaded: scripted failure")
    finished = events[-1]
    assert isinstance(finished, Finished)
    assert finished.total.cost_micros == billed(events) == 20 * 5 + 1 * 25
    assert await r.figures() == (125, 0)
    assert [c.call.model.id for c in r.provider.calls] == ["fast", "strong"]


async def test_the_hold_is_retargeted_to_what_was_billed_plus_the_next_estimate() -> None:
    gate = asyncio.Event()
    # fast reports its input usage, then fails before any text: billed, then fallen back from.
    fast = [UsageReport(10, 0), Fail()]
    r = await rig({"fast": [fast], "strong": [[Gate(gate), *answer("Hi")]]})
    decision = decide(FAST, STRONG)

    play = asyncio.create_task(r.play(decision))
    await r.called["strong"].wait()
    _, reserved = await r.figures()
    gate.set()
    events, error = await play

    assert error is None
    assert reserved == 10 + decision.estimated_cost_micros(STRONG)
    assert [e.usage.model for e in events if isinstance(e, Billed)] == ["fast", "strong"]
    assert await r.figures() == (billed(events), 0)


async def test_a_model_it_cannot_afford_is_skipped() -> None:
    decision = decide(FAST, STRONG, SPARE)
    # Enough for fast's estimate only: strong and spare are skipped, so every candidate failed.
    r = await rig({"fast": [broken()]}, cap_micros=decision.estimated_cost_micros(FAST))

    events, error = await r.play(decision)

    assert isinstance(error, AllCandidatesFailed)
    assert kinds(events) == [Routed]
    assert await r.figures() == (0, 0)


async def test_an_error_after_the_first_token_is_stream_broken_and_the_part_is_billed() -> None:
    r = await rig({"fast": [broken("Half", input_tokens=10)], "strong": []})

    events, error = await r.play(decide(FAST, STRONG))

    assert isinstance(error, StreamBroken)
    assert kinds(events) == [Routed, Delta], "no fallback once text was sent"
    assert r.provider.calls_to("strong") == []
    assert await r.figures() == (FAST.price.cost_micros(10, estimate_tokens("Half")), 0)


async def test_an_open_circuit_at_admission_falls_back_without_calling_the_model() -> None:
    r = await rig({"strong": [answer("Hi")]})
    for _ in range(5):  # the default policy opens after five failures
        r.breaker.record("fast", Outcome.FAILURE)

    events, error = await r.play(decide(FAST, STRONG))

    assert error is None
    fallback = events[1]
    assert isinstance(fallback, FallbackTaken)
    assert fallback.error.startswith("circuit_open: circuit open until")
    assert r.provider.calls_to("fast") == []


async def test_a_stall_until_the_deadline_ends_with_the_provider_stopped_and_nothing_held() -> None:
    r = await rig({"fast": [[Stall()]]})

    # gRPC cancels the handler when the call's deadline passes; so does this timeout.
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await r.play(decide(FAST, STRONG), timeout_s=0.05)

    [call] = r.provider.calls
    assert call.stopped_early
    assert await r.figures() == (0, 0)
    assert others() == []


async def test_each_attempt_gets_what_is_left_of_the_deadline() -> None:
    gate = asyncio.Event()
    r = await rig({"fast": [[Gate(gate), Fail()]], "strong": [answer("Hi")]})

    play = asyncio.create_task(r.play(decide(FAST, STRONG), timeout_s=30.0))
    await r.called["fast"].wait()
    await asyncio.sleep(0.01)  # the event loop's clock moves on while fast is out
    gate.set()
    _, error = await play

    assert error is None
    first, second = (c.call.timeout_s for c in r.provider.calls)
    assert first is not None
    assert second is not None
    assert second < first <= 30.0


async def test_no_fallback_starts_once_the_deadline_has_passed() -> None:
    gate = asyncio.Event()
    r = await rig({"fast": [[Gate(gate), Fail()]], "strong": []})

    play = asyncio.create_task(r.play(decide(FAST, STRONG), timeout_s=0.01))
    await r.called["fast"].wait()
    await asyncio.sleep(0.02)
    gate.set()
    events, error = await play

    assert isinstance(error, AllCandidatesFailed)
    assert kinds(events) == [Routed]
    assert r.provider.calls_to("strong") == []
    assert await r.figures() == (0, 0)


async def test_the_caller_leaving_mid_stream_cancels_the_attempt_and_bills_what_streamed() -> None:
    r = await rig({"fast": [[UsageReport(10, 0), TextChunk("one"), Stall()]]})
    seen: list[GenerationEvent] = []
    got_text = asyncio.Event()

    # The servicer's shape: the run is closed by aclosing when the handler's task is cancelled.
    async def handler() -> None:
        async with aclosing(r.run(decide(FAST, STRONG))) as events:
            async for event in events:
                seen.append(event)
                if isinstance(event, Delta):
                    got_text.set()

    task = asyncio.create_task(handler())
    await got_text.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert kinds(seen) == [Routed, Delta]
    [call] = r.provider.calls
    assert call.outcome in ("cancelled", "closed")
    assert await r.figures() == (FAST.price.cost_micros(10, estimate_tokens("one")), 0)
    assert others() == []
