"""Hedging (F9) through the real server, the real `anthropic` SDK and the loopback Anthropic fake.

The test catalog's three models sit behind one fake. "classify this: ..." routes to fast-1, and
with a latency target the plan hedges on balanced-1 (the fastest other model: none has been
observed yet, so the cheaper tier). The fake holds a model's response at a gate until the test
opens it or the client hangs up, so who answers first is decided by the test, not by timing:
the only timer is the engine's own hedge delay (the request's `latency_target_ms`).

What a hedge must show the caller: the `hedge` event (before the winner's first text), the
winner's text only, a `usage` event for each attempt that used anything (Anthropic's
`message_start` carries the input tokens; an attempt cut off before its response headers used
nothing), `done.total` the sum of those, the loser's upstream connection closed, and the ledger
settled to exactly `done.total` with nothing left reserved.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from fareway.core.clock import SystemClock
from fareway.v1 import router_pb2
from tests.fakes.anthropic_server import Answer, FakeAnthropic
from tests.fakes.http_server import ClientGone, RecordedRequest, Responder
from tests.server.harness import (
    TENANT_KEY,
    Harness,
    HarnessFactory,
    make_config,
    metadata,
)
from tests.server.harness import user_request as request

AUTH = metadata(TENANT_KEY)
PROMPT = "classify this: a hedged request"  # the rules send it to fast-1
TARGET_MS = 50
FIRST, HEDGE = "fast-1", "balanced-1"
UPSTREAM = {FIRST: "up-fast", HEDGE: "up-balanced"}
# Prices of the test catalog, micro-USD per token (USD per million tokens).
PRICES = {FIRST: (1, 5), HEDGE: (3, 15)}
FIRST_ANSWER = Answer(chunks=("First", " model"), input_tokens=12, output_tokens=4)
HEDGE_ANSWER = Answer(chunks=("Hedged", " answer"), input_tokens=30, output_tokens=7)
HELD = 600.0  # seconds: "until the client hangs up" (the fake's pause wakes at the disconnect)


class GatedAnthropic(FakeAnthropic):
    """The fake, with a gate per upstream model: a request for a gated model is recorded
    (`arrived`), then waits before its response headers until the gate opens or the client
    hangs up."""

    def __init__(self) -> None:
        super().__init__()
        self.gates: dict[str, asyncio.Event] = {}
        self.arrived: dict[str, asyncio.Event] = {m: asyncio.Event() for m in UPSTREAM.values()}

    def request_for(self, upstream_model: str) -> RecordedRequest:
        [found] = [r for r in self.requests if r.body["model"] == upstream_model]
        return found

    async def stream(self, r: Responder, b: Answer) -> None:  # type: ignore[override]
        model = r.record.body["model"]
        self.arrived[model].set()
        gate = self.gates.get(model)
        if gate is not None:
            opened = asyncio.ensure_future(gate.wait())
            gone = asyncio.ensure_future(r.record.wait_disconnected(HELD))
            await asyncio.wait({opened, gone}, return_when=asyncio.FIRST_COMPLETED)
            opened.cancel()
            gone.cancel()
            if not gate.is_set():
                raise ClientGone
        await super().stream(r, b)


@dataclass
class Streamed:
    """What the caller of one Generate saw, in order."""

    kinds: list[str] = field(default_factory=list)
    decision: router_pb2.RouteDecision | None = None
    text: str = ""
    hedges: list[router_pb2.Hedge] = field(default_factory=list)
    usage: list[router_pb2.Usage] = field(default_factory=list)
    done: router_pb2.Done | None = None


async def generate(harness: Harness, req: router_pb2.GenerateRequest) -> Streamed:
    """Read one Generate to its end (the server settles before it ends the call)."""
    seen = Streamed()
    async for event in harness.router.Generate(req, metadata=AUTH):
        kind = event.WhichOneof("event")
        seen.kinds.append(kind)
        if kind == "decision":
            seen.decision = event.decision
        elif kind == "delta":
            seen.text += event.delta.text
        elif kind == "hedge":
            seen.hedges.append(event.hedge)
        elif kind == "usage":
            seen.usage.append(event.usage)
        elif kind == "done":
            seen.done = event.done
    return seen


def cost(model: str, input_tokens: int, output_tokens: int) -> int:
    input_price, output_price = PRICES[model]
    return input_tokens * input_price + output_tokens * output_price  # whole micro-USD here


def assert_billed_as_reported(harness: Harness, seen: Streamed) -> None:
    """`done.total` sums the usage events, each priced as its model is."""
    assert seen.done is not None
    total = seen.done.total
    for usage in seen.usage:
        assert usage.cost_micros == cost(usage.model, usage.input_tokens, usage.output_tokens)
    assert total.input_tokens == sum(u.input_tokens for u in seen.usage)
    assert total.output_tokens == sum(u.output_tokens for u in seen.usage)
    assert total.cost_micros == sum(u.cost_micros for u in seen.usage) > 0


async def assert_settled(harness: Harness, seen: Streamed) -> None:
    assert seen.done is not None
    [day] = (await harness.ledger.state("acme")).limits
    assert (day.spent_micros, day.reserved_micros) == (seen.done.total.cost_micros, 0)


@pytest.fixture
async def fake() -> AsyncIterator[GatedAnthropic]:
    async with GatedAnthropic() as server:
        yield server


@pytest.fixture
async def harness(serve: HarnessFactory, fake: GatedAnthropic) -> Harness:
    config = make_config(provider="upstream", base_url=fake.base_url)
    served: Harness = await serve(config, clock=SystemClock())
    return served


async def test_a_late_first_token_is_hedged_and_the_hedge_answers(
    harness: Harness, fake: GatedAnthropic
) -> None:
    fake.gates[UPSTREAM[FIRST]] = asyncio.Event()  # never opened: fast-1 sends nothing
    fake.script(FIRST_ANSWER, HEDGE_ANSWER)

    seen = await generate(harness, request(PROMPT, latency_target_ms=TARGET_MS))

    assert seen.decision is not None
    assert seen.decision.model == FIRST
    [hedge] = seen.hedges
    assert (hedge.from_model, hedge.to_model, hedge.winner) == (FIRST, HEDGE, HEDGE)
    assert hedge.after_ms >= TARGET_MS
    assert seen.kinds.index("hedge") < seen.kinds.index("delta"), "who answers, then the answer"
    assert seen.text == "Hedged answer"
    # The loser's upstream call was closed, before it ever sent its headers.
    assert await fake.request_for(UPSTREAM[FIRST]).wait_disconnected()
    assert fake.request_for(UPSTREAM[HEDGE]).finished
    # fast-1 used nothing, so only the hedge is billed.
    assert [(u.model, u.input_tokens, u.output_tokens) for u in seen.usage] == [
        (HEDGE, HEDGE_ANSWER.input_tokens, HEDGE_ANSWER.output_tokens)
    ]
    assert_billed_as_reported(harness, seen)
    await assert_settled(harness, seen)


async def test_a_loser_that_had_started_its_response_is_billed_for_its_input(
    harness: Harness, fake: GatedAnthropic
) -> None:
    """fast-1 sends its headers and `message_start` (the input tokens), then no text."""
    late_text = dataclasses.replace(FIRST_ANSWER, first_chunk_delay_s=HELD)
    fake.script(late_text, HEDGE_ANSWER)

    seen = await generate(harness, request(PROMPT, latency_target_ms=TARGET_MS))

    [hedge] = seen.hedges
    assert (hedge.from_model, hedge.to_model, hedge.winner) == (FIRST, HEDGE, HEDGE)
    assert seen.text == "Hedged answer"
    assert await fake.request_for(UPSTREAM[FIRST]).wait_disconnected()
    usage = {u.model: u for u in seen.usage}
    assert sorted(usage) == [HEDGE, FIRST]
    assert usage[FIRST].input_tokens == FIRST_ANSWER.input_tokens, "message_start's count"
    assert (usage[HEDGE].input_tokens, usage[HEDGE].output_tokens) == (
        HEDGE_ANSWER.input_tokens,
        HEDGE_ANSWER.output_tokens,
    )
    assert_billed_as_reported(harness, seen)
    await assert_settled(harness, seen)


async def test_the_first_model_answering_after_the_hedge_started_wins_and_the_hedge_is_closed(
    harness: Harness, fake: GatedAnthropic
) -> None:
    first_gate = fake.gates[UPSTREAM[FIRST]] = asyncio.Event()
    fake.gates[UPSTREAM[HEDGE]] = asyncio.Event()  # the hedge never gets to answer
    fake.script(FIRST_ANSWER, HEDGE_ANSWER)

    call = asyncio.ensure_future(generate(harness, request(PROMPT, latency_target_ms=TARGET_MS)))
    try:
        await fake.arrived[UPSTREAM[HEDGE]].wait()  # the hedge has started
        first_gate.set()
        seen = await call
    finally:
        call.cancel()

    [hedge] = seen.hedges
    assert (hedge.from_model, hedge.to_model, hedge.winner) == (FIRST, HEDGE, FIRST)
    assert hedge.after_ms >= TARGET_MS
    assert seen.text == "First model"
    assert await fake.request_for(UPSTREAM[HEDGE]).wait_disconnected()
    assert fake.request_for(UPSTREAM[FIRST]).finished
    assert [u.model for u in seen.usage] == [FIRST]
    assert_billed_as_reported(harness, seen)
    await assert_settled(harness, seen)


async def test_a_first_token_within_the_target_is_not_hedged(
    harness: Harness, fake: GatedAnthropic
) -> None:
    """The same plan as above (a hedge on balanced-1), with a target fast-1 beats: it answers
    at once, so the hedge never starts."""
    fake.script(FIRST_ANSWER, HEDGE_ANSWER)

    seen = await generate(harness, request(PROMPT, latency_target_ms=60_000))

    assert seen.decision is not None
    assert seen.decision.model == FIRST
    assert seen.hedges == []
    assert "hedge" not in seen.kinds
    assert seen.text == "First model"
    assert [r.body["model"] for r in fake.requests] == [UPSTREAM[FIRST]], "never called"
    assert not fake.arrived[UPSTREAM[HEDGE]].is_set()
    assert [u.model for u in seen.usage] == [FIRST]
    assert_billed_as_reported(harness, seen)
    await assert_settled(harness, seen)
