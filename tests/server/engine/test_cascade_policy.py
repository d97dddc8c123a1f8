"""The engine under the cascade policy, in process, against the scripted provider, in both
modes: an answer confident enough stands; one that is not escalates up the ladder, with the
events router.proto names; failures, the budget, the deadline and the caller leaving each end
the way the engine's docstring says, with nothing left reserved and exactly the used tokens
billed.
"""

from __future__ import annotations

import asyncio
import math

import pytest

from fareway.core.errors import StreamBroken
from fareway.providers.assessment import INSTRUCTION
from fareway.providers.base import Finish, TextChunk, UsageReport
from fareway.routing.decision import CascadeMode, ConfidenceSource
from fareway.routing.tokens import estimate_tokens
from fareway.server.engine.cascade import SIGNAL
from fareway.server.engine.events import (
    Billed,
    Delta,
    Escalated,
    FallbackTaken,
    Finished,
    GenerationEvent,
    Routed,
)
from tests.fakes.scripted import Gate, Stall, answer, broken
from tests.server.engine.rig import FAST, SPARE, STRONG, billed, cascade, kinds, rig

BOTH = pytest.mark.parametrize("mode", list(CascadeMode))

UNSURE = answer("Maybe", "\nconfidence: 0.3")
SURE = answer("Sure", "\nconfidence: 0.9")


def text_after_last_discard(events: list[GenerationEvent]) -> str:
    """What a streaming caller that honours discard_previous ends up showing."""
    shown: list[str] = []
    for event in events:
        if isinstance(event, Escalated) and event.discard_previous:
            shown.clear()
        elif isinstance(event, Delta):
            shown.append(event.text)
    return "".join(shown)


def finished(events: list[GenerationEvent]) -> Finished:
    last = events[-1]
    assert isinstance(last, Finished)
    return last


def others() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]


@BOTH
async def test_a_confident_answer_stands_without_its_tail(mode: CascadeMode) -> None:
    r = await rig({"fast": [SURE]})

    events, error = await r.play(cascade(FAST, STRONG, mode=mode))

    assert error is None
    # Buffered, the text goes out once the answer is accepted, after its usage.
    body = [Billed, Delta] if mode is CascadeMode.BUFFERED else [Delta, Billed]
    assert kinds(events) == [Routed, *body, Finished]
    assert text_after_last_discard(events) == "Sure"
    assert finished(events).signals == {SIGNAL: 0.9}
    assert finished(events).reason == ""
    [call] = r.provider.calls
    assert call.call.self_assessment
    assert call.call.system.endswith(INSTRUCTION)
    assert await r.figures() == (billed(events), 0)


async def test_buffered_escalation_sends_only_the_accepted_answer() -> None:
    r = await rig({"fast": [UNSURE], "strong": [SURE]})

    events, error = await r.play(cascade(FAST, STRONG, mode=CascadeMode.BUFFERED))

    assert error is None
    assert kinds(events) == [Routed, Billed, Escalated, Billed, Delta, Finished]
    assert events[2] == Escalated(
        "fast", "strong", "confidence 0.30 is below the threshold 0.8", 0.3, False
    )
    assert [e.text for e in events if isinstance(e, Delta)] == ["Sure"]
    assert finished(events).signals == {SIGNAL: 0.9}
    assert finished(events).total.cost_micros == billed(events)
    assert await r.figures() == (billed(events), 0)


async def test_speculative_escalation_streams_at_once_and_discards_the_first_answer() -> None:
    r = await rig({"fast": [UNSURE], "strong": [SURE]})

    events, error = await r.play(cascade(FAST, STRONG, mode=CascadeMode.SPECULATIVE))

    assert error is None
    assert kinds(events) == [Routed, Delta, Billed, Escalated, Delta, Billed, Finished]
    assert events[1] == Delta("Maybe")
    escalation = events[3]
    assert isinstance(escalation, Escalated)
    assert escalation.discard_previous
    assert text_after_last_discard(events) == "Sure"
    assert await r.figures() == (billed(events), 0)


@BOTH
async def test_a_missing_confidence_is_low_and_escalates(mode: CascadeMode) -> None:
    r = await rig({"fast": [answer("No tail here")], "strong": [SURE]})

    events, error = await r.play(cascade(FAST, STRONG, mode=mode))

    assert error is None
    [escalation] = [e for e in events if isinstance(e, Escalated)]
    assert (escalation.confidence, escalation.reason) == (
        0.0,
        "the answer gave no readable confidence",
    )
    assert text_after_last_discard(events) == "Sure"


@BOTH
async def test_the_top_of_the_ladder_stands_whatever_its_confidence(mode: CascadeMode) -> None:
    low = answer("Hmm", "\nconfidence: 0.5")
    r = await rig({"fast": [UNSURE], "strong": [low], "spare": [answer("Eh", "\nconfidence: 0.4")]})

    events, error = await r.play(cascade(FAST, STRONG, SPARE, mode=mode))

    assert error is None
    assert [(e.from_model, e.to_model) for e in events if isinstance(e, Escalated)] == [
        ("fast", "strong"),
        ("strong", "spare"),
    ]
    assert text_after_last_discard(events) == "Eh"
    assert finished(events).signals == {SIGNAL: 0.4}
    assert [e.usage.model for e in events if isinstance(e, Billed)] == ["fast", "strong", "spare"]
    assert await r.figures() == (billed(events), 0)


@BOTH
async def test_an_error_before_the_first_token_falls_back_and_the_fallback_is_judged(
    mode: CascadeMode,
) -> None:
    r = await rig({"fast": [broken()], "spare": [UNSURE], "strong": [SURE]})

    events, error = await r.play(cascade(FAST, STRONG, mode=mode, fallbacks=(SPARE,)))

    assert error is None
    assert isinstance(events[1], FallbackTaken)
    assert [(e.from_model, e.to_model) for e in events if isinstance(e, Escalated)] == [
        ("spare", "strong")
    ]
    assert text_after_last_discard(events) == "Sure"
    assert await r.figures() == (billed(events), 0)


async def test_buffered_a_break_mid_answer_falls_back_as_the_caller_saw_nothing() -> None:
    r = await rig({"fast": [broken("Half")], "spare": [SURE]})

    events, error = await r.play(
        cascade(FAST, STRONG, mode=CascadeMode.BUFFERED, fallbacks=(SPARE,))
    )

    assert error is None
    assert kinds(events) == [Routed, Billed, FallbackTaken, Billed, Delta, Finished]
    assert text_after_last_discard(events) == "Sure"
    assert await r.figures() == (billed(events), 0)


async def test_speculative_a_break_mid_answer_is_stream_broken_and_the_part_billed() -> None:
    r = await rig({"fast": [broken("Half", input_tokens=10)], "spare": []})

    events, error = await r.play(
        cascade(FAST, STRONG, mode=CascadeMode.SPECULATIVE, fallbacks=(SPARE,))
    )

    assert isinstance(error, StreamBroken)
    assert kinds(events) == [Routed, Delta]
    assert await r.figures() == (FAST.price.cost_micros(10, estimate_tokens("Half")), 0)


@BOTH
async def test_a_failed_escalation_leaves_the_previous_answer_standing(mode: CascadeMode) -> None:
    r = await rig({"fast": [UNSURE], "strong": [broken()]})

    events, error = await r.play(cascade(FAST, STRONG, mode=mode))

    assert error is None
    assert text_after_last_discard(events) == "Maybe"
    done = finished(events)
    assert done.reason == (
        "escalating to strong failed (overloaded: scripted failure); the answer of fast stands"
    )
    assert done.signals == {SIGNAL: 0.3}
    assert await r.figures() == (billed(events), 0)


async def test_buffered_a_break_in_the_escalation_leaves_the_previous_answer() -> None:
    r = await rig({"fast": [UNSURE], "strong": [broken("Half")]})

    events, error = await r.play(cascade(FAST, STRONG, mode=CascadeMode.BUFFERED))

    assert error is None
    assert [e.text for e in events if isinstance(e, Delta)] == ["Maybe"]
    assert [e.usage.model for e in events if isinstance(e, Billed)] == ["fast", "strong"]
    assert await r.figures() == (billed(events), 0)


async def test_speculative_a_break_in_the_escalation_is_stream_broken() -> None:
    r = await rig({"fast": [UNSURE], "strong": [broken("Half", input_tokens=10)]})

    events, error = await r.play(cascade(FAST, STRONG, mode=CascadeMode.SPECULATIVE))

    assert isinstance(error, StreamBroken)
    assert text_after_last_discard(events) == "Half"
    assert [e.usage.model for e in events if isinstance(e, Billed)] == ["fast", "strong"]
    assert await r.figures() == (billed(events), 0)


@BOTH
async def test_an_escalation_the_tenant_cannot_afford_leaves_the_answer_with_the_reason(
    mode: CascadeMode,
) -> None:
    decision = cascade(FAST, STRONG, mode=mode)
    # fast's estimate fits; fast's cost plus strong's estimate does not.
    r = await rig({"fast": [UNSURE]}, cap_micros=decision.estimated_cost_micros(FAST) + 10)

    events, error = await r.play(decision)

    assert error is None
    assert not [e for e in events if isinstance(e, Escalated)]
    assert text_after_last_discard(events) == "Maybe"
    assert finished(events).reason == (
        "the tenant cannot afford escalating to strong; the answer of fast stands"
    )
    assert r.provider.calls_to("strong") == []
    assert await r.figures() == (billed(events), 0)


async def test_no_escalation_starts_once_the_deadline_has_passed() -> None:
    gate = asyncio.Event()
    r = await rig({"fast": [[Gate(gate), *UNSURE]], "strong": []})

    play = asyncio.create_task(r.play(cascade(FAST, STRONG), timeout_s=0.01))
    await r.called["fast"].wait()
    await asyncio.sleep(0.02)
    gate.set()
    events, error = await play

    assert error is None
    assert finished(events).reason == "no time was left to escalate; the answer of fast stands"
    assert r.provider.calls_to("strong") == []
    assert await r.figures() == (billed(events), 0)


@BOTH
async def test_a_stall_until_the_deadline_stops_the_attempt_with_nothing_held(
    mode: CascadeMode,
) -> None:
    r = await rig({"fast": [UNSURE], "strong": [[UsageReport(10, 0), Stall()]]})

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await r.play(cascade(FAST, STRONG, mode=mode), timeout_s=0.05)

    [stalled] = r.provider.calls_to("strong")
    assert stalled.stopped_early
    spent, reserved = await r.figures()
    assert reserved == 0
    assert spent == FAST.price.cost_micros(10, 2) + STRONG.price.cost_micros(10, 0)
    assert others() == []


@BOTH
async def test_the_caller_leaving_during_an_escalation_stops_it_and_bills_what_was_used(
    mode: CascadeMode,
) -> None:
    r = await rig({"fast": [UNSURE], "strong": [[UsageReport(10, 0), TextChunk("one"), Stall()]]})

    await r.leave_when_stalled(cascade(FAST, STRONG, mode=mode), "strong")

    [call] = r.provider.calls_to("strong")
    await call.ended.wait()
    assert call.stopped_early
    spent, reserved = await r.figures()
    assert reserved == 0
    assert spent == FAST.price.cost_micros(10, 2) + STRONG.price.cost_micros(
        10, estimate_tokens("one")
    )
    assert others() == []


async def test_the_log_probability_source_judges_by_the_tokens_and_asks_for_no_tail() -> None:
    unsure = [
        UsageReport(10, 0),
        TextChunk("Maybe", logprobs=(math.log(0.5), math.log(0.5))),
        UsageReport(10, 2),
        Finish("end_turn"),
    ]
    sure = [
        UsageReport(10, 0),
        TextChunk("Sure", logprobs=(math.log(0.95),)),
        UsageReport(10, 1),
        Finish("end_turn"),
    ]
    r = await rig({"fast": [unsure], "strong": [sure]})

    events, error = await r.play(cascade(FAST, STRONG, source=ConfidenceSource.LOGPROBS))

    assert error is None
    [escalation] = [e for e in events if isinstance(e, Escalated)]
    assert escalation.confidence == pytest.approx(0.5)
    assert finished(events).signals[SIGNAL] == pytest.approx(0.95)
    for call in r.provider.calls:
        assert call.call.logprobs
        assert not call.call.self_assessment
        assert INSTRUCTION not in call.call.system
