"""The scripted provider that engine tests drive: it plays each step as written, on the
injected clock, and records every call and how its stream ended."""

from __future__ import annotations

import asyncio

import pytest

from fareway.core.clock import ManualClock
from fareway.core.content import Message
from fareway.core.errors import ProviderError, RateLimited
from fareway.providers.base import Finish, ProviderCall, ProviderEvent, TextChunk, UsageReport
from fareway.routing.catalog import ModelSpec
from tests.fakes.scripted import (
    Fail,
    Gate,
    ScriptedProvider,
    Sleep,
    Stall,
    answer,
    broken,
    model,
)
from tests.providers.upstreams import collect, collect_until_error

FAST = model("fast-model")
STRONG = model("strong-model", tier="powerful")


def call(model: ModelSpec = FAST, text: str = "hi") -> ProviderCall:
    return ProviderCall(model, "", (Message.user(text),), 100)


async def test_events_are_played_as_scripted_and_the_call_is_recorded() -> None:
    provider = ScriptedProvider.in_order(answer("Hello", ", world", response_id="r1"))

    events = await collect(provider, call())

    assert events == [
        UsageReport(10, 0),
        TextChunk("Hello"),
        TextChunk(", world"),
        UsageReport(10, 2),
        Finish("end_turn", "r1"),
    ]
    [record] = provider.calls
    assert record.call == call()
    assert record.sent == events
    assert record.text == "Hello, world"
    assert (record.outcome, record.stopped_early, record.ended.is_set()) == (
        "finished",
        False,
        True,
    )


async def test_a_failure_names_the_model_and_carries_retry_after() -> None:
    provider = ScriptedProvider.in_order([Fail(RateLimited, "slow down", retry_after_s=3.0)])

    with pytest.raises(RateLimited) as caught:
        await collect(provider, call())

    assert (str(caught.value), caught.value.model, caught.value.retry_after_s) == (
        "slow down",
        FAST.id,
        3.0,
    )
    assert provider.calls[0].outcome == "failed"


async def test_a_broken_stream_sends_its_pieces_then_fails() -> None:
    provider = ScriptedProvider.in_order(broken("one ", "two"))
    seen: list[ProviderEvent] = []

    with pytest.raises(ProviderError):
        await collect_until_error(provider, call(), seen)

    assert [e for e in seen if isinstance(e, TextChunk)] == [TextChunk("one "), TextChunk("two")]
    assert provider.calls[0].outcome == "failed"


async def test_sleep_waits_on_the_injected_clock() -> None:
    clock = ManualClock()
    provider = ScriptedProvider.in_order([Sleep(0.5), *answer("late")], clock=clock)
    start = clock.monotonic()

    async for event in provider.stream(call()):
        if isinstance(event, TextChunk):
            assert clock.monotonic() - start == pytest.approx(0.5)


async def test_closing_the_stream_at_a_yield_is_recorded_as_closed() -> None:
    provider = ScriptedProvider.in_order(answer("first", "never"))
    stream = provider.stream(call())

    while not isinstance(await anext(stream), TextChunk):
        pass
    await stream.aclose()

    [record] = provider.calls
    assert (record.outcome, record.stopped_early, record.text) == ("closed", True, "first")
    assert record.ended.is_set()


async def test_a_stall_lasts_until_its_task_is_cancelled() -> None:
    provider = ScriptedProvider.in_order([UsageReport(5, 0), Stall(), *answer("never")])
    task = asyncio.create_task(collect(provider, call()))
    await asyncio.sleep(0)
    await asyncio.sleep(0)

    assert provider.calls[0].outcome == "running"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    [record] = provider.calls
    assert (record.outcome, record.stopped_early, record.sent) == (
        "cancelled",
        True,
        [UsageReport(5, 0)],
    )


async def test_a_gate_orders_concurrent_streams() -> None:
    gate = asyncio.Event()
    provider = ScriptedProvider.per_model(
        {FAST.id: [[Gate(gate), *answer("fast")]], STRONG.id: [answer("strong")]}
    )
    order: list[str] = []

    async def consume(model: ModelSpec) -> None:
        async for event in provider.stream(call(model)):
            if isinstance(event, TextChunk):
                order.append(event.text)
                gate.set()

    await asyncio.gather(consume(FAST), consume(STRONG))

    assert order == ["strong", "fast"]


async def test_per_model_scripts_play_in_order_for_each_model() -> None:
    provider = ScriptedProvider.per_model(
        {FAST.id: [broken(), answer("second try")], STRONG.id: [answer("strong")]}
    )

    with pytest.raises(ProviderError):
        await collect(provider, call(FAST))
    await collect(provider, call(STRONG))
    await collect(provider, call(FAST))

    assert [r.outcome for r in provider.calls_to(FAST.id)] == ["failed", "finished"]
    assert [r.text for r in provider.calls_to(STRONG.id)] == ["strong"]


def test_a_call_beyond_the_scripts_fails_the_test_at_once() -> None:
    provider = ScriptedProvider.per_model({FAST.id: [answer("only")]})
    provider.stream(call(FAST))

    with pytest.raises(AssertionError, match="unexpected call"):
        provider.stream(call(FAST))
    with pytest.raises(AssertionError, match="unexpected call"):
        provider.stream(call(STRONG))
    with pytest.raises(AssertionError, match="unexpected call #1"):
        ScriptedProvider.in_order().stream(call())


async def test_a_handler_sees_the_call() -> None:
    provider = ScriptedProvider(lambda c: answer(c.messages[-1].text.upper()))

    events = await collect(provider, call(text="shout"))

    assert TextChunk("SHOUT") in events


async def test_aclose_is_recorded() -> None:
    provider = ScriptedProvider.in_order()

    await provider.aclose()

    assert provider.closed
