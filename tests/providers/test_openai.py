"""OpenAIProvider's own protocol, which test_provider_contract.py does not cover: usage only
in a last chunk with no choices (asked for by `include_usage`), finish reasons translated to
fareway's words and possibly on the last text chunk, `max_tokens_field`, the `code` an error
carries, its configuration, and the fake's chat completions wire format.
"""

from __future__ import annotations

import logging
from unittest.mock import ANY

import openai
import pytest
from pydantic import TypeAdapter, ValidationError

from fareway.core.clock import SystemClock
from fareway.core.errors import ProviderError, ProviderRejected, ProviderUnreachable, RateLimited
from fareway.providers.base import Finish, Provider, ProviderEvent, TextChunk, UsageReport
from fareway.providers.openai import OpenAIProvider
from fareway.providers.registry import (
    PLACEHOLDER_API_KEY,
    MaxTokensField,
    OpenAIConfig,
    ProviderConfig,
)
from fareway.providers.sim import SimProvider
from tests.fakes.http_server import HttpError as PlainHttpError
from tests.fakes.openai_server import Answer, Drop, FakeOpenAI, HttpError, StreamError
from tests.providers.upstreams import API_KEY, OPENAI, Upstream, collect, collect_until_error


@pytest.fixture
def upstream() -> Upstream:
    return OPENAI


# --- a normal answer -----------------------------------------------------------------------------


async def test_usage_comes_once_from_the_final_chunk_the_request_asked_for(
    fake: FakeOpenAI, provider: Provider
) -> None:
    fake.script(Answer(chunks=("Hel", "lo"), input_tokens=9, output_tokens=3))

    events = await collect(provider, OPENAI.call())

    assert fake.requests[0].body["stream_options"] == {"include_usage": True}
    assert events == [
        TextChunk("Hel"),
        TextChunk("lo"),
        UsageReport(9, 3),
        Finish("end_turn", ANY, ANY),
    ]


@pytest.mark.parametrize(
    ("finish_reason", "stop_reason"),
    [
        # "stop" and "length" are in the contract suite, as end_turn and max_tokens.
        ("tool_calls", "tool_use"),
        ("content_filter", "refusal"),
        ("abort", "abort"),  # anything else passes through
    ],
)
async def test_finish_reason_is_translated_and_finish_comes_last_once(
    fake: FakeOpenAI, provider: Provider, finish_reason: str, stop_reason: str
) -> None:
    fake.script(Answer(finish_reason=finish_reason))

    events = await collect(provider, OPENAI.call())

    assert events[-1] == Finish(stop_reason, ANY, ANY)
    assert sum(isinstance(e, Finish) for e in events) == 1


async def test_finish_reason_on_the_last_text_chunk_keeps_that_text(
    fake: FakeOpenAI, provider: Provider
) -> None:
    """vLLM sends the last text and the finish_reason in one chunk."""
    fake.script(Answer(chunks=("one", " two"), finish_reason="length", finish_with_last_text=True))

    events = await collect(provider, OPENAI.call())

    assert [e for e in events if isinstance(e, TextChunk)] == [TextChunk("one"), TextChunk(" two")]
    assert events[-1] == Finish("max_tokens", ANY, ANY)


async def test_stream_ending_cleanly_without_a_finish_reason_is_a_failure(
    fake: FakeOpenAI, provider: Provider
) -> None:
    fake.script(Answer(chunks=("cut",), finish_reason=None))
    seen: list[ProviderEvent] = []

    with pytest.raises(ProviderUnreachable):
        await collect_until_error(provider, OPENAI.call(), seen)

    assert TextChunk("cut") in seen
    assert not any(isinstance(e, Finish) for e in seen)


async def test_dropped_stream_reports_no_usage(fake: FakeOpenAI, provider: Provider) -> None:
    """The usage chunk never came: the caller estimates, the provider does not make numbers up."""
    fake.script(Drop(chunks=("partial",)))
    seen: list[ProviderEvent] = []

    with pytest.raises(ProviderUnreachable):
        await collect_until_error(provider, OPENAI.call(), seen)

    assert seen == [TextChunk("partial")]


# --- what is sent upstream -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("configured", "sent", "absent"),
    [
        (None, "max_tokens", "max_completion_tokens"),
        ("max_completion_tokens", "max_completion_tokens", "max_tokens"),
    ],
    ids=["default", "max_completion_tokens"],
)
async def test_the_limit_goes_in_exactly_one_field(
    fake: FakeOpenAI, configured: MaxTokensField | None, sent: str, absent: str
) -> None:
    options = {"max_tokens_field": configured} if configured is not None else {}
    provider = OpenAIProvider(API_KEY, fake.base_url, **options)
    try:
        await collect(provider, OPENAI.call(max_tokens=55))
    finally:
        await provider.aclose()

    assert fake.requests[0].body[sent] == 55
    assert absent not in fake.requests[0].body


# --- OpenAI-compatible error vocabulary ----------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (HttpError(429, "insufficient_quota", code="insufficient_quota"), RateLimited),
        # Inside an open stream there is no status: vLLM and OpenRouter put the one they mean
        # in the error chunk's `code`.
        (StreamError(chunks=("one ",), error_type="BadRequestError", code=400), ProviderRejected),
        (StreamError(chunks=("one ",), error_type="upstream_error", code=429), RateLimited),
    ],
    ids=["429-quota", "vllm-400-code", "openrouter-429-code"],
)
async def test_error_code_decides_the_kind(
    fake: FakeOpenAI,
    provider: Provider,
    error: PlainHttpError | StreamError,
    expected: type[ProviderError],
) -> None:
    fake.script(error)
    seen: list[ProviderEvent] = []

    with pytest.raises(ProviderError) as caught:
        await collect_until_error(provider, OPENAI.call(), seen)

    assert type(caught.value) is expected
    assert caught.value.model == OPENAI.model.id
    assert caught.value.retry_after_s is None
    # The text before an error chunk still arrives, and nothing claims the answer finished.
    assert seen == ([TextChunk("one ")] if isinstance(error, StreamError) else [])
    assert len(fake.requests) == 1


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
        await collect(provider, OPENAI.call())
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
        await collect(provider, OPENAI.call())
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


def sdk_client(fake: FakeOpenAI) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=API_KEY, base_url=fake.base_url, max_retries=0)


async def test_fake_stream_parses_into_the_sdks_final_completion(fake: FakeOpenAI) -> None:
    """Guards the wire format the server tests rely on, checked by the SDK's own accumulator."""
    fake.script(Answer(chunks=("Hi", " there"), input_tokens=4, output_tokens=2, model="m-1"))
    async with (
        sdk_client(fake) as client,
        client.chat.completions.stream(
            model="m-1",
            messages=[{"role": "user", "content": "hi"}],
            stream_options={"include_usage": True},
        ) as stream,
    ):
        completion = await stream.get_final_completion()

    assert completion.choices[0].message.content == "Hi there"
    assert (completion.model, completion.choices[0].finish_reason) == ("m-1", "stop")
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (4, 2)
    assert completion.usage.total_tokens == 6
    assert fake.requests[0].finished
    assert not fake.requests[0].disconnected_early


async def test_fake_sends_no_usage_chunk_unless_asked(fake: FakeOpenAI) -> None:
    async with sdk_client(fake) as client:
        stream = await client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        chunks = [chunk async for chunk in stream]

    assert all(chunk.choices and chunk.usage is None for chunk in chunks)


async def test_fake_error_body_is_what_the_sdk_reads_from_openai(fake: FakeOpenAI) -> None:
    fake.script(HttpError(429, "requests", "Rate limit reached", code="rate_limit_exceeded"))
    async with sdk_client(fake) as client:
        with pytest.raises(openai.RateLimitError) as caught:
            await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}], stream=True
            )

    assert (caught.value.type, caught.value.code) == ("requests", "rate_limit_exceeded")
    assert caught.value.message == "Error code: 429 - Rate limit reached"
    assert caught.value.request_id == "req_fake_1"
