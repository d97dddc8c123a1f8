"""One attempt's time limits (F10): the per-provider first-token timeout, and telling the
caller's own deadline from a provider's timeout. The provider here is a small implementation of
the `Provider` interface whose pauses are real but short, so each test is bounded."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence

from fareway.budgets.pricing import Price
from fareway.core.clock import ManualClock
from fareway.core.content import Message
from fareway.core.errors import ProviderTimeout
from fareway.providers.base import Finish, ProviderCall, ProviderEvent, TextChunk
from fareway.routing.catalog import ModelSpec
from fareway.server.engine.attempt import AttemptJob, AttemptResult, Meter, Output, run_attempt
from fareway.server.engine.events import Delta

MODEL = ModelSpec(
    id="fast-1",
    provider="paced",
    provider_model_id="up-fast",
    tier="fast",
    price=Price(1_000_000, 5_000_000),
    context_window=100_000,
    max_output_tokens=1_000,
    capabilities=frozenset(),
    quality=0.7,
)


class Paced:
    """A provider that waits `pauses[i]` seconds before its i-th piece; a pause given as a
    ProviderTimeout waits `after_s` and raises it (as an SDK whose own timeout ran out)."""

    name = "paced"
    genai_name = "test"
    simulated = True
    server_address = ""

    def __init__(self, pauses: Sequence[float], timeout_after_s: float | None = None) -> None:
        self._pauses = pauses
        self._timeout_after_s = timeout_after_s
        self.closed = False

    async def stream(self, call: ProviderCall) -> AsyncGenerator[ProviderEvent, None]:
        try:
            if self._timeout_after_s is not None:
                await asyncio.sleep(self._timeout_after_s)
                raise ProviderTimeout("Request timed out.", model=call.model.id)
            for i, pause in enumerate(self._pauses):
                await asyncio.sleep(pause)
                yield TextChunk(f"p{i} ")
            yield Finish("end_turn")
        finally:
            self.closed = True

    async def aclose(self) -> None:
        return None


async def run(
    provider: Paced, timeout_s: float | None, first_token_timeout_s: float | None
) -> tuple[AttemptResult, list[str]]:
    """One attempt of fast-1 on `provider`: its result and the pieces it sent."""
    sent: list[str] = []

    async def send(piece: Output) -> None:
        assert isinstance(piece, Delta), "Paced streams text only"
        sent.append(piece.text)

    call = ProviderCall(MODEL, "", (Message.user("hi"),), 100, timeout_s)
    job = AttemptJob(call, prompt_tokens=1, first_token_timeout_s=first_token_timeout_s)
    result = await run_attempt(job, provider, ManualClock(), send, Meter(MODEL, 1), lambda: None)
    return result, sent


async def test_no_first_token_in_time_is_a_provider_timeout_and_closes_the_stream() -> None:
    provider = Paced([30.0])

    result, _ = await run(provider, None, 0.1)

    assert isinstance(result.error, ProviderTimeout)
    assert str(result.error) == "no first token within 0.1 s"
    assert result.error.model == "fast-1"
    assert provider.closed
    assert result.first_token_at is None
    assert not result.out_of_time, "the provider's limit, so it counts against the model"


async def test_the_limit_is_on_the_first_token_only() -> None:
    result, pieces = await run(Paced([0.0, 0.3, 0.0]), None, 0.1)

    assert pieces == ["p0 ", "p1 ", "p2 "]
    assert result.error is None
    assert result.stop_reason == "end_turn"


async def test_without_a_limit_a_slow_first_token_is_waited_for() -> None:
    assert (await run(Paced([0.2]), None, None))[1] == ["p0 "]


async def test_a_timeout_once_the_calls_deadline_passed_is_the_callers() -> None:
    result, _ = await run(Paced([], timeout_after_s=0.25), 0.2, None)

    assert isinstance(result.error, ProviderTimeout)
    assert result.out_of_time


async def test_a_timeout_well_within_the_calls_deadline_is_the_providers() -> None:
    result, _ = await run(Paced([], timeout_after_s=0.05), 10.0, None)

    assert isinstance(result.error, ProviderTimeout)
    assert not result.out_of_time
