"""The simulated provider: repeatable answers, real usage counts, pacing on the injected clock."""

from __future__ import annotations

import pytest

from fareway.config.loader import load_config
from fareway.core.clock import ManualClock
from fareway.providers.base import Finish, ProviderCall, ProviderEvent, TextChunk, UsageReport
from fareway.providers.sim import SimProfile, SimProvider
from fareway.routing.catalog import ModelSpec
from fareway.routing.request import ChatMessage, Role

HAIKU: ModelSpec = load_config().models[0].spec()


def call(text: str = "What is fareway?", max_tokens: int = 1000) -> ProviderCall:
    return ProviderCall(HAIKU, "", (ChatMessage(Role.USER, text),), max_tokens)


async def run(provider: SimProvider, request: ProviderCall) -> list[ProviderEvent]:
    return [event async for event in provider.stream(request)]


async def test_the_same_request_gives_the_same_answer() -> None:
    provider = SimProvider(ManualClock())
    first, second = await run(provider, call()), await run(provider, call())
    other = await run(provider, call("Something else entirely"))

    assert first == second
    assert first != other


async def test_usage_counts_the_tokens_streamed() -> None:
    events = await run(SimProvider(ManualClock(), {HAIKU.id: SimProfile(answer_tokens=40)}), call())
    chunks = [e for e in events if isinstance(e, TextChunk)]
    final_usage = [e for e in events if isinstance(e, UsageReport)][-1]

    assert 30 <= len(chunks) <= 50
    assert final_usage.output_tokens == len(chunks)
    assert final_usage.input_tokens > 0
    assert events[-1] == Finish("end_turn")


async def test_max_tokens_cuts_the_answer() -> None:
    events = await run(SimProvider(ManualClock()), call(max_tokens=5))

    assert sum(isinstance(e, TextChunk) for e in events) == 5
    assert events[-1] == Finish("max_tokens")


async def test_pacing_follows_the_profile_on_the_injected_clock() -> None:
    clock = ManualClock()
    profile = SimProfile(ttft_ms=300, tokens_per_second=100, answer_tokens=50)
    provider = SimProvider(clock, {HAIKU.id: profile})
    start = clock.monotonic()
    first_token_at = None
    tokens = 0
    async for event in provider.stream(call()):
        if isinstance(event, TextChunk):
            tokens += 1
            first_token_at = first_token_at or clock.monotonic()

    assert first_token_at is not None
    assert first_token_at - start == pytest.approx(0.3)
    assert clock.monotonic() - start == pytest.approx(0.3 + tokens / 100)
