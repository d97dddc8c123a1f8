"""The request life against a loopback OpenAI-compatible server through the real openai SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from fareway.core.clock import SystemClock
from tests.fakes.openai_server import Answer, FakeOpenAI, HttpError
from tests.server.harness import TENANT_KEY, Harness, make_config, metadata, user_request

AUTH = metadata(TENANT_KEY)


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def compatible(serve: Any, fake: FakeOpenAI) -> Harness:
    harness: Harness = await serve(
        make_config(provider="compatible", base_url=fake.base_url), clock=SystemClock()
    )
    return harness


async def spent(harness: Harness) -> int:
    state = await harness.ledger.state("acme")
    assert state.limits[0].reserved_micros == 0
    return state.limits[0].spent_micros


async def test_tokens_and_usage_come_from_the_chat_completions_stream(
    compatible: Harness, fake: FakeOpenAI
) -> None:
    fake.script(Answer(chunks=("Not", " spam"), input_tokens=2000, output_tokens=100))
    reply = await compatible.router.Complete(user_request("classify this: hi"), metadata=AUTH)

    assert reply.text == "Not spam"
    assert reply.stop_reason == "end_turn"
    (usage,) = reply.usage
    # fast-1: 2000 input tokens at $1/Mtok + 100 output tokens at $5/Mtok.
    assert (usage.input_tokens, usage.output_tokens, usage.cost_micros) == (2000, 100, 2500)
    assert await spent(compatible) == 2500
    body = fake.requests[0].body
    assert body["model"] == "up-fast"
    assert body["stream_options"] == {"include_usage": True}


async def test_a_rate_limited_model_falls_back_like_any_provider(
    compatible: Harness, fake: FakeOpenAI
) -> None:
    fake.script(HttpError(429, "requests", retry_after="3"), Answer())
    reply = await compatible.router.Complete(user_request("classify this: hi"), metadata=AUTH)

    (fallback,) = reply.fallbacks
    assert (fallback.from_model, fallback.to_model) == ("fast-1", "balanced-1")
    assert fallback.error.startswith("rate_limited:")
    assert reply.usage[-1].model == "balanced-1"


async def test_a_server_that_never_reports_usage_is_billed_an_estimate(
    compatible: Harness, fake: FakeOpenAI
) -> None:
    fake.script(Answer(chunks=("word " * 40,), report_usage=False))
    reply = await compatible.router.Complete(user_request("classify this: hi"), metadata=AUTH)

    (usage,) = reply.usage
    assert usage.input_tokens > 0
    assert usage.output_tokens >= 40
    assert await spent(compatible) == usage.cost_micros > 0
