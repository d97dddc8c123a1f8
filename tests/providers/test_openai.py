"""OpenAIProvider through the real openai SDK against a loopback OpenAI-compatible server.

The SDK is built on httpx2, so nothing short of a real HTTP server exercises its SSE parsing,
error mapping, timeouts and connection handling the way production traffic does. The failures
are the ones test_anthropic.py checks, and must map to the same error kinds, so that fallbacks
treat both providers alike.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
from collections.abc import AsyncIterator, Iterator

import openai
import pytest
from pydantic import TypeAdapter, ValidationError

from fareway.budgets.pricing import Price
from fareway.core.clock import SystemClock
from fareway.core.errors import (
    Overloaded,
    ProviderError,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnreachable,
    RateLimited,
)
from fareway.providers.base import Finish, ProviderCall, ProviderEvent, TextChunk, UsageReport
from fareway.providers.openai import OpenAIProvider
from fareway.providers.registry import PLACEHOLDER_API_KEY, OpenAIConfig, ProviderConfig
from fareway.providers.sim import SimProvider
from fareway.routing.catalog import ModelSpec
from fareway.routing.request import ChatMessage, Role
from tests.fakes.openai_server import Answer, Drop, FakeOpenAI, Hang, HttpError, StreamError

API_KEY = "sk-test-key"
MODEL = ModelSpec(
    id="local-small",
    provider="local",
    provider_model_id="qwen-test-7b",
    tier="small",
    price=Price(100_000, 200_000),
    context_window=32_768,
    max_output_tokens=4_096,
    capabilities=frozenset(),
    quality=0.4,
)
HTTP_DATE = "Wed, 21 Oct 2099 07:28:00 GMT"  # a valid Retry-After that is not a number
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
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def provider(fake: FakeOpenAI) -> AsyncIterator[OpenAIProvider]:
    prov = OpenAIProvider(api_key=API_KEY, base_url=fake.base_url)
    yield prov
    await prov.aclose()


async def collect(provider: OpenAIProvider, call: ProviderCall) -> list[ProviderEvent]:
    return [event async for event in provider.stream(call)]


async def collect_until_error(
    provider: OpenAIProvider, call: ProviderCall, seen: list[ProviderEvent]
) -> None:
    """Append events to `seen` as they arrive, so a test can inspect them after a raise."""
    async for event in provider.stream(call):
        seen.append(event)


# --- a normal answer -----------------------------------------------------------------------------


async def test_text_arrives_in_order_as_text_chunks(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    fake.script(Answer(chunks=("The ", "quick ", "brown ", "fox")))

    events = await collect(provider, make_call())

    texts = [e.text for e in events if isinstance(e, TextChunk)]
    assert texts == ["The ", "quick ", "brown ", "fox"]


async def test_usage_comes_from_the_final_chunk_the_request_asked_for(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    fake.script(Answer(chunks=("a", "b"), input_tokens=321, output_tokens=17))

    events = await collect(provider, make_call())

    assert fake.requests[0].body["stream_options"] == {"include_usage": True}
    assert [e for e in events if isinstance(e, UsageReport)] == [UsageReport(321, 17)]


async def test_whole_event_sequence(fake: FakeOpenAI, provider: OpenAIProvider) -> None:
    fake.script(Answer(chunks=("Hel", "lo"), input_tokens=9, output_tokens=3))

    assert await collect(provider, make_call()) == [
        TextChunk("Hel"),
        TextChunk("lo"),
        UsageReport(9, 3),
        Finish("end_turn"),
    ]


@pytest.mark.parametrize(
    ("finish_reason", "stop_reason"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
        ("abort", "abort"),  # anything else passes through
    ],
)
async def test_finish_reason_is_translated_and_finish_comes_last_once(
    fake: FakeOpenAI, provider: OpenAIProvider, finish_reason: str, stop_reason: str
) -> None:
    fake.script(Answer(finish_reason=finish_reason))

    events = await collect(provider, make_call())

    assert events[-1] == Finish(stop_reason)
    assert sum(isinstance(e, Finish) for e in events) == 1


async def test_finish_reason_on_the_last_text_chunk_keeps_that_text(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    """vLLM sends the last text and the finish_reason in one chunk."""
    fake.script(Answer(chunks=("one", " two"), finish_reason="length", finish_with_last_text=True))

    events = await collect(provider, make_call())

    assert [e for e in events if isinstance(e, TextChunk)] == [TextChunk("one"), TextChunk(" two")]
    assert events[-1] == Finish("max_tokens")


async def test_stream_ending_cleanly_without_a_finish_reason_is_a_failure(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    fake.script(Answer(chunks=("cut",), finish_reason=None))
    seen: list[ProviderEvent] = []

    with pytest.raises(ProviderUnreachable):
        await collect_until_error(provider, make_call(), seen)

    assert TextChunk("cut") in seen
    assert not any(isinstance(e, Finish) for e in seen)


# --- what is sent upstream -----------------------------------------------------------------------


async def test_request_body_carries_model_limit_and_system_first(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    messages = (
        ChatMessage(Role.USER, "What is 2+2?"),
        ChatMessage(Role.ASSISTANT, "4"),
        ChatMessage(Role.USER, "And 3+3?"),
    )

    await collect(provider, make_call(system="Answer tersely.", messages=messages, max_tokens=77))

    [request] = fake.requests
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.body["model"] == "qwen-test-7b"
    assert request.body["max_tokens"] == 77
    assert "max_completion_tokens" not in request.body
    assert request.body["stream"] is True
    assert request.body["messages"] == [
        {"role": "system", "content": "Answer tersely."},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3+3?"},
    ]


async def test_empty_system_prompt_sends_no_system_message(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    await collect(provider, make_call(system=""))

    assert fake.requests[0].body["messages"] == [{"role": "user", "content": "hi"}]


async def test_limit_can_go_in_max_completion_tokens_instead(fake: FakeOpenAI) -> None:
    provider = OpenAIProvider(API_KEY, fake.base_url, max_tokens_field="max_completion_tokens")
    try:
        await collect(provider, make_call(max_tokens=55))
    finally:
        await provider.aclose()

    assert fake.requests[0].body["max_completion_tokens"] == 55
    assert "max_tokens" not in fake.requests[0].body


async def test_api_key_is_sent_as_bearer_token(fake: FakeOpenAI, provider: OpenAIProvider) -> None:
    await collect(provider, make_call())

    assert fake.requests[0].headers["authorization"] == f"Bearer {API_KEY}"


# --- failures before the first token -------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected", "retry_after_s"),
    [
        (HttpError(429, "requests", retry_after="7", code="rate_limit_exceeded"), RateLimited, 7.0),
        (HttpError(429, "insufficient_quota", code="insufficient_quota"), RateLimited, None),
        (HttpError(503, "server_error", retry_after="2.5"), Overloaded, 2.5),
        (HttpError(503, "server_error", retry_after=HTTP_DATE), Overloaded, None),
        (HttpError(500, "server_error"), Overloaded, None),
        (HttpError(401, "invalid_request_error", code="invalid_api_key"), ProviderRejected, None),
        (HttpError(404, "invalid_request_error", code="model_not_found"), ProviderRejected, None),
        (HttpError(400, "BadRequestError"), ProviderRejected, None),
    ],
    ids=["429", "429-quota", "503-retry-after", "503-retry-after-date", "500", "401", "404", "400"],
)
async def test_http_error_maps_to_provider_error_without_sdk_retry(
    fake: FakeOpenAI,
    provider: OpenAIProvider,
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
    fake: FakeOpenAI, provider: OpenAIProvider
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
    provider = OpenAIProvider(api_key=API_KEY, base_url=f"http://127.0.0.1:{closed_port}/v1")
    try:
        with pytest.raises(ProviderUnreachable):
            await collect(provider, make_call(timeout_s=5.0))
    finally:
        await provider.aclose()


# --- failures mid-stream -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (StreamError(error_type="server_error", code=None), Overloaded),  # OpenAI's
        (StreamError(error_type="InternalServerError", code=500), Overloaded),  # vLLM's
        (StreamError(error_type="BadRequestError", code=400), ProviderRejected),
        (StreamError(error_type="requests", code="rate_limit_exceeded"), RateLimited),
        (StreamError(error_type="upstream_error", code=429), RateLimited),  # OpenRouter's
    ],
    ids=["openai", "vllm-500", "vllm-400", "rate-limit-code", "status-429-code"],
)
async def test_error_chunk_mid_stream_raises_after_earlier_chunks(
    fake: FakeOpenAI, provider: OpenAIProvider, error: StreamError, expected: type[ProviderError]
) -> None:
    fake.script(dataclasses.replace(error, chunks=("one ", "two")))
    seen: list[ProviderEvent] = []

    with pytest.raises(ProviderError) as caught:
        await collect_until_error(provider, make_call(), seen)

    assert type(caught.value) is expected
    assert caught.value.model == MODEL.id
    assert [e for e in seen if isinstance(e, TextChunk)] == [TextChunk("one "), TextChunk("two")]
    assert not any(isinstance(e, Finish) for e in seen)
    assert len(fake.requests) == 1


async def test_connection_dropped_mid_stream_raises_and_reports_no_usage(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    fake.script(Drop(chunks=("partial",)))
    seen: list[ProviderEvent] = []

    with pytest.raises(ProviderUnreachable):
        await collect_until_error(provider, make_call(), seen)

    assert TextChunk("partial") in seen
    # The usage chunk never came: the caller estimates, the provider does not make numbers up.
    assert not any(isinstance(e, UsageReport) for e in seen)
    assert len(fake.requests) == 1


async def test_stall_mid_stream_past_timeout_raises_provider_timeout(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    fake.script(Answer(chunks=("first", "never"), chunk_delay_s=STALL_S))
    seen: list[ProviderEvent] = []

    with pytest.raises(ProviderTimeout):
        await collect_until_error(provider, make_call(timeout_s=0.2), seen)

    assert TextChunk("first") in seen


# --- stopping early ------------------------------------------------------------------------------


async def test_aclose_mid_stream_closes_the_upstream_connection(
    fake: FakeOpenAI, provider: OpenAIProvider
) -> None:
    fake.script(Answer(chunks=("first", "never"), chunk_delay_s=STALL_S))
    stream = provider.stream(make_call())

    assert await anext(stream) == TextChunk("first")
    assert not fake.requests[0].disconnected_early
    await stream.aclose()

    assert await fake.requests[0].wait_disconnected(timeout_s=5.0)


# --- configuration -------------------------------------------------------------------------------


def build(config: OpenAIConfig, env: dict[str, str]) -> object:
    return config.build("local", SystemClock(), {}, env)


def test_config_is_chosen_by_type_and_needs_a_base_url() -> None:
    adapter: TypeAdapter[ProviderConfig] = TypeAdapter(ProviderConfig)

    parsed = adapter.validate_python({"type": "openai", "base_url": "http://127.0.0.1:8000/v1"})

    assert isinstance(parsed, OpenAIConfig)
    assert (parsed.api_key_env, parsed.simulate_without_key) == ("OPENAI_API_KEY", False)
    with pytest.raises(ValidationError, match="base_url"):
        adapter.validate_python({"type": "openai"})


async def test_config_builds_a_provider_that_sends_the_key_from_the_environment(
    fake: FakeOpenAI,
) -> None:
    config = OpenAIConfig(type="openai", base_url=fake.base_url, api_key_env="LOCAL_KEY")
    provider = build(config, {"LOCAL_KEY": "sk-from-env"})
    assert isinstance(provider, OpenAIProvider)
    try:
        await collect(provider, make_call())
    finally:
        await provider.aclose()

    assert fake.requests[0].headers["authorization"] == "Bearer sk-from-env"


async def test_without_a_key_a_placeholder_is_sent_and_a_warning_logged(
    fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    config = OpenAIConfig(type="openai", base_url=fake.base_url)
    with caplog.at_level(logging.WARNING, logger="fareway.providers.registry"):
        provider = build(config, {})
    assert isinstance(provider, OpenAIProvider)
    try:
        await collect(provider, make_call())
    finally:
        await provider.aclose()

    assert fake.requests[0].headers["authorization"] == f"Bearer {PLACEHOLDER_API_KEY}"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "$OPENAI_API_KEY" in warnings[0]


def test_without_a_key_it_is_simulated_only_when_asked() -> None:
    config = OpenAIConfig(
        type="openai", base_url="http://127.0.0.1:1/v1", simulate_without_key=True
    )

    assert isinstance(build(config, {}), SimProvider)
    assert isinstance(build(config, {"OPENAI_API_KEY": "sk-real"}), OpenAIProvider)


# --- the fake itself -----------------------------------------------------------------------------


async def test_fake_stream_parses_into_the_sdks_final_completion(fake: FakeOpenAI) -> None:
    """Guards the wire format the server tests rely on, checked by the SDK's own accumulator."""
    fake.script(Answer(chunks=("Hi", " there"), input_tokens=4, output_tokens=2, model="m-1"))
    client = openai.AsyncOpenAI(api_key=API_KEY, base_url=fake.base_url, max_retries=0)
    try:
        async with client.chat.completions.stream(
            model="m-1",
            messages=[{"role": "user", "content": "hi"}],
            stream_options={"include_usage": True},
        ) as stream:
            completion = await stream.get_final_completion()
    finally:
        await client.close()

    assert completion.choices[0].message.content == "Hi there"
    assert (completion.model, completion.choices[0].finish_reason) == ("m-1", "stop")
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (4, 2)
    assert completion.usage.total_tokens == 6
    assert fake.requests[0].finished
    assert not fake.requests[0].disconnected_early


async def test_fake_sends_no_usage_chunk_unless_asked(fake: FakeOpenAI) -> None:
    client = openai.AsyncOpenAI(api_key=API_KEY, base_url=fake.base_url, max_retries=0)
    try:
        stream = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        chunks = [chunk async for chunk in stream]
    finally:
        await client.close()

    assert all(chunk.choices and chunk.usage is None for chunk in chunks)


async def test_fake_error_body_is_what_the_sdk_reads_from_openai(fake: FakeOpenAI) -> None:
    fake.script(HttpError(429, "requests", "Rate limit reached", code="rate_limit_exceeded"))
    client = openai.AsyncOpenAI(api_key=API_KEY, base_url=fake.base_url, max_retries=0)
    try:
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}], stream=True
            )
    finally:
        await client.close()

    assert (caught.value.type, caught.value.code) == ("requests", "rate_limit_exceeded")
    assert caught.value.message == "Error code: 429 - Rate limit reached"
    assert caught.value.request_id == "req_fake_1"
