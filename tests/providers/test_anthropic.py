"""AnthropicProvider through the real SDK against a loopback fake of the Messages API.

The SDK is built on httpx2, so nothing short of a real HTTP server exercises its SSE parsing,
error mapping, timeouts and connection handling the way production traffic does.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator

import anthropic
import pytest

from fareway.budgets.pricing import Price
from fareway.core.errors import (
    Overloaded,
    ProviderError,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnreachable,
    RateLimited,
)
from fareway.providers.anthropic import AnthropicProvider
from fareway.providers.base import Finish, ProviderCall, ProviderEvent, TextChunk, UsageReport
from fareway.routing.catalog import ModelSpec
from fareway.routing.request import ChatMessage, Role
from tests.fakes.anthropic_server import (
    Answer,
    Drop,
    FakeAnthropic,
    Hang,
    HttpError,
    StreamError,
)

API_KEY = "sk-ant-test-key"
MODEL = ModelSpec(
    id="claude-small",
    provider="anthropic",
    provider_model_id="claude-haiku-test-20250101",
    tier="small",
    price=Price(1_000_000, 5_000_000),
    context_window=200_000,
    max_output_tokens=8_192,
    capabilities=frozenset(),
    quality=0.5,
)
STALL_S = 3600.0  # "forever": the fake wakes as soon as the client hangs up


def make_call(
    *,
    system: str = "",
    messages: tuple[ChatMessage, ...] = (ChatMessage(Role.USER, "hi"),),
    max_tokens: int = 256,
    timeout_s: float | None = None,
) -> ProviderCall:
    """A call to MODEL; tests override only what they look at."""
    return ProviderCall(MODEL, system, messages, max_tokens, timeout_s)


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic() as server:
        yield server


@pytest.fixture
async def provider(fake: FakeAnthropic) -> AsyncIterator[AnthropicProvider]:
    prov = AnthropicProvider(api_key=API_KEY, base_url=fake.base_url)
    yield prov
    await prov.aclose()


async def collect(provider: AnthropicProvider, call: ProviderCall) -> list[ProviderEvent]:
    return [event async for event in provider.stream(call)]


async def collect_until_error(
    provider: AnthropicProvider, call: ProviderCall, seen: list[ProviderEvent]
) -> None:
    """Append events to `seen` as they arrive, so a test can inspect them after a raise."""
    async for event in provider.stream(call):
        seen.append(event)


# --- a normal answer -----------------------------------------------------------------------------


async def test_text_arrives_in_order_as_text_chunks(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.script(Answer(chunks=("The ", "quick ", "brown ", "fox")))

    events = await collect(provider, make_call())

    assert [e.text for e in events if isinstance(e, TextChunk)] == [
        "The ",
        "quick ",
        "brown ",
        "fox",
    ]


async def test_usage_takes_input_from_message_start_and_output_from_message_delta(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.script(Answer(chunks=("a", "b"), input_tokens=321, output_tokens=17))

    events = await collect(provider, make_call())

    usage = [e for e in events if isinstance(e, UsageReport)]
    assert usage[0].input_tokens == 321
    assert usage[-1] == UsageReport(input_tokens=321, output_tokens=17)
    # The final count comes after the text, so a stream cut short still reports the earlier one.
    assert events.index(usage[-1]) > max(
        i for i, e in enumerate(events) if isinstance(e, TextChunk)
    )


async def test_finish_carries_the_stop_reason_and_comes_last(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.script(Answer(stop_reason="max_tokens"))

    events = await collect(provider, make_call())

    assert events[-1] == Finish("max_tokens")
    assert sum(isinstance(e, Finish) for e in events) == 1


async def test_whole_event_sequence(fake: FakeAnthropic, provider: AnthropicProvider) -> None:
    fake.script(Answer(chunks=("Hel", "lo"), input_tokens=9, output_tokens=3))

    assert await collect(provider, make_call()) == [
        UsageReport(9, 1),
        TextChunk("Hel"),
        TextChunk("lo"),
        UsageReport(9, 3),
        Finish("end_turn"),
    ]


# --- what is sent upstream -----------------------------------------------------------------------


async def test_request_body_carries_model_limits_system_and_roles(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    messages = (
        ChatMessage(Role.USER, "What is 2+2?"),
        ChatMessage(Role.ASSISTANT, "4"),
        ChatMessage(Role.USER, "And 3+3?"),
    )

    await collect(provider, make_call(system="Answer tersely.", messages=messages, max_tokens=77))

    [request] = fake.requests
    assert (request.method, request.path) == ("POST", "/v1/messages")
    assert request.body["model"] == "claude-haiku-test-20250101"
    assert request.body["max_tokens"] == 77
    assert request.body["system"] == "Answer tersely."
    assert request.body["stream"] is True
    assert request.body["messages"] == [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3+3?"},
    ]


async def test_empty_system_prompt_is_omitted(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    await collect(provider, make_call(system=""))

    assert "system" not in fake.requests[0].body


async def test_api_key_is_sent(fake: FakeAnthropic, provider: AnthropicProvider) -> None:
    await collect(provider, make_call())

    # anthropic 2.14 sends the key as a bearer token (older SDKs used `x-api-key`).
    assert fake.requests[0].headers["authorization"] == f"Bearer {API_KEY}"


# --- failures before the first token -------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected", "retry_after_s"),
    [
        (HttpError(429, "rate_limit_error", retry_after="7"), RateLimited, 7.0),
        (HttpError(529, "overloaded_error", retry_after="2.5"), Overloaded, 2.5),
        (HttpError(529, "overloaded_error"), Overloaded, None),
        (HttpError(500, "api_error"), Overloaded, None),
        (HttpError(401, "authentication_error"), ProviderRejected, None),
        (HttpError(400, "invalid_request_error"), ProviderRejected, None),
    ],
    ids=["429", "529-retry-after", "529", "500", "401", "400"],
)
async def test_http_error_maps_to_provider_error_without_sdk_retry(
    fake: FakeAnthropic,
    provider: AnthropicProvider,
    error: HttpError,
    expected: type[ProviderError],
    retry_after_s: float | None,
) -> None:
    fake.script(error)

    with pytest.raises(ProviderError) as caught:
        await collect(provider, make_call())

    assert type(caught.value) is expected
    assert caught.value.model == MODEL.id
    assert caught.value.retry_after_s == retry_after_s
    assert len(fake.requests) == 1, "the SDK retried; fareway does its own retries"


async def test_server_hanging_past_timeout_raises_provider_timeout(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.script(Hang())

    with pytest.raises(ProviderTimeout):
        await collect(provider, make_call(timeout_s=0.2))

    assert len(fake.requests) == 1
    assert await fake.requests[0].wait_disconnected()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port held (bound, never listening) for the test, so connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


async def test_nothing_listening_raises_provider_unreachable(closed_port: int) -> None:
    provider = AnthropicProvider(api_key=API_KEY, base_url=f"http://127.0.0.1:{closed_port}")
    try:
        with pytest.raises(ProviderUnreachable):
            await collect(provider, make_call(timeout_s=5.0))
    finally:
        await provider.aclose()


# --- failures mid-stream -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error_type", "expected"),
    [
        ("overloaded_error", Overloaded),
        ("api_error", Overloaded),
        ("rate_limit_error", RateLimited),
    ],
)
async def test_error_event_mid_stream_raises_after_earlier_chunks(
    fake: FakeAnthropic,
    provider: AnthropicProvider,
    error_type: str,
    expected: type[ProviderError],
) -> None:
    fake.script(StreamError(chunks=("one ", "two"), error_type=error_type))
    seen: list[ProviderEvent] = []

    with pytest.raises(ProviderError) as caught:
        await collect_until_error(provider, make_call(), seen)

    assert type(caught.value) is expected
    assert [e for e in seen if isinstance(e, TextChunk)] == [TextChunk("one "), TextChunk("two")]
    assert not any(isinstance(e, Finish) for e in seen)
    assert len(fake.requests) == 1


async def test_connection_dropped_mid_stream_raises_provider_error(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.script(Drop(chunks=("partial",)))
    seen: list[ProviderEvent] = []

    with pytest.raises(ProviderUnreachable):
        await collect_until_error(provider, make_call(), seen)

    assert TextChunk("partial") in seen
    assert len(fake.requests) == 1


async def test_stall_mid_stream_past_timeout_raises_provider_timeout(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.script(Answer(chunks=("first", "never"), chunk_delay_s=STALL_S))
    seen: list[ProviderEvent] = []

    with pytest.raises(ProviderTimeout):
        await collect_until_error(provider, make_call(timeout_s=0.2), seen)

    assert TextChunk("first") in seen


# --- stopping early ------------------------------------------------------------------------------


async def test_aclose_mid_stream_closes_the_upstream_connection(
    fake: FakeAnthropic, provider: AnthropicProvider
) -> None:
    fake.script(Answer(chunks=("first", "never"), chunk_delay_s=STALL_S))
    stream = provider.stream(make_call())

    while not isinstance(await anext(stream), TextChunk):
        pass
    assert not fake.requests[0].disconnected_early
    await stream.aclose()

    assert await fake.requests[0].wait_disconnected(timeout_s=5.0)


# --- the fake itself -----------------------------------------------------------------------------


async def test_fake_stream_parses_into_the_sdks_final_message(fake: FakeAnthropic) -> None:
    """Guards the wire format the server tests rely on, checked by the SDK's own accumulator."""
    fake.script(Answer(chunks=("Hi", " there"), input_tokens=4, output_tokens=2, model="m-1"))
    client = anthropic.AsyncAnthropic(api_key=API_KEY, base_url=fake.base_url, max_retries=0)
    try:
        async with client.messages.stream(
            model="m-1", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        ) as stream:
            message = await stream.get_final_message()
    finally:
        await client.close()

    assert message.content[0].type == "text"
    assert message.content[0].text == "Hi there"
    assert (message.model, message.stop_reason) == ("m-1", "end_turn")
    assert (message.usage.input_tokens, message.usage.output_tokens) == (4, 2)
    assert fake.requests[0].finished
    assert not fake.requests[0].disconnected_early
