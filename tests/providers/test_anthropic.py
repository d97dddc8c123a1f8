"""AnthropicProvider's own protocol: usage split over `message_start` and `message_delta`, a
top-level `system` field left out when empty, and the fake's Messages API wire format.

test_provider_contract.py runs this provider through everything all providers share.
"""

from __future__ import annotations

from unittest.mock import ANY

import anthropic
import pytest

from fareway.providers.base import Finish, Provider, TextChunk, UsageReport
from tests.fakes.anthropic_server import Answer, FakeAnthropic
from tests.providers.upstreams import ANTHROPIC, API_KEY, Upstream, collect


@pytest.fixture
def upstream() -> Upstream:
    return ANTHROPIC


async def test_usage_comes_from_message_start_and_then_message_delta(
    fake: FakeAnthropic, provider: Provider
) -> None:
    """`message_start` reports the input tokens before any text, so a stream cut short still
    reports them; `message_delta` then carries the cumulative output count."""
    fake.script(Answer(chunks=("Hel", "lo"), input_tokens=9, output_tokens=3))

    assert await collect(provider, ANTHROPIC.call()) == [
        UsageReport(9, 1),
        TextChunk("Hel"),
        TextChunk("lo"),
        UsageReport(9, 3),
        Finish("end_turn", ANY, ANY),
    ]


async def test_empty_system_prompt_is_omitted(fake: FakeAnthropic, provider: Provider) -> None:
    await collect(provider, ANTHROPIC.call(system=""))

    assert "system" not in fake.requests[0].body


async def test_fake_stream_parses_into_the_sdks_final_message(fake: FakeAnthropic) -> None:
    """Guards the wire format the server tests rely on, checked by the SDK's own accumulator."""
    fake.script(Answer(chunks=("Hi", " there"), input_tokens=4, output_tokens=2, model="m-1"))
    async with (
        anthropic.AsyncAnthropic(api_key=API_KEY, base_url=fake.base_url, max_retries=0) as client,
        client.messages.stream(
            model="m-1", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        ) as stream,
    ):
        message = await stream.get_final_message()

    assert message.content[0].type == "text"
    assert message.content[0].text == "Hi there"
    assert (message.model, message.stop_reason) == ("m-1", "end_turn")
    assert (message.usage.input_tokens, message.usage.output_tokens) == (4, 2)
    assert fake.requests[0].finished
    assert not fake.requests[0].disconnected_early
