"""The provider contract, run by every SDK-backed provider against its loopback fake.

The SDKs are built on httpx2, so nothing short of a real HTTP server exercises their SSE parsing,
error mapping, timeouts and connection handling the way production traffic does. Every provider
must fail the same way for the same upstream failure, so that fallbacks treat them alike; each
test here is written once, in terms of `tests.providers.upstreams.Upstream`, and each upstream
scripts it in its own API's vocabulary. What one protocol alone does is in test_<provider>.py.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from fareway.core.content import Message
from fareway.core.errors import (
    Overloaded,
    ProviderError,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnreachable,
    RateLimited,
)
from fareway.providers.base import Finish, Provider, ProviderEvent, TextChunk, UsageReport
from tests.fakes.http_server import Hang, HttpError, LoopbackServer
from tests.providers.upstreams import (
    API_KEY,
    STALL_S,
    UPSTREAMS,
    ErrorKind,
    StreamErrorKind,
    Upstream,
    collect,
    collect_until_error,
)

HTTP_DATE = "Wed, 21 Oct 2099 07:28:00 GMT"  # a valid Retry-After that is not a number


@pytest.fixture(params=UPSTREAMS, ids=lambda upstream: upstream.name)
def upstream(request: pytest.FixtureRequest) -> Upstream:
    assert isinstance(request.param, Upstream)
    return request.param


# --- a normal answer -----------------------------------------------------------------------------


async def test_text_arrives_in_order_as_text_chunks(
    upstream: Upstream, fake: LoopbackServer[Any], provider: Provider
) -> None:
    fake.script(upstream.answer(("The ", "quick ", "brown ", "fox")))

    events = await collect(provider, upstream.call())

    texts = [e.text for e in events if isinstance(e, TextChunk)]
    assert texts == ["The ", "quick ", "brown ", "fox"]


async def test_usage_reports_input_and_output_tokens_after_the_last_text(
    upstream: Upstream, fake: LoopbackServer[Any], provider: Provider
) -> None:
    fake.script(upstream.answer(("a", "b"), input_tokens=321, output_tokens=17))

    events = await collect(provider, upstream.call())

    usage = [e for e in events if isinstance(e, UsageReport)]
    assert {u.input_tokens for u in usage} == {321}
    assert usage[-1] == UsageReport(input_tokens=321, output_tokens=17)
    last_text = max(i for i, e in enumerate(events) if isinstance(e, TextChunk))
    assert events.index(usage[-1]) > last_text


@pytest.mark.parametrize(
    ("at_limit", "stop_reason"), [(False, "end_turn"), (True, "max_tokens")], ids=["stop", "limit"]
)
async def test_finish_carries_the_stop_reason_and_comes_last_once(
    upstream: Upstream,
    fake: LoopbackServer[Any],
    provider: Provider,
    at_limit: bool,
    stop_reason: str,
) -> None:
    fake.script(upstream.answer(at_limit=at_limit))

    events = await collect(provider, upstream.call())

    finishes = [e for e in events if isinstance(e, Finish)]
    assert [f.stop_reason for f in finishes] == [stop_reason]
    assert events[-1] is finishes[0]


async def test_finish_names_the_response_and_the_model_that_answered(
    upstream: Upstream, fake: LoopbackServer[Any], provider: Provider
) -> None:
    """What traces record, so that an answer can be found in the provider's own logs."""
    fake.script(upstream.answer(model="resolved-model-v2"))

    events = await collect(provider, upstream.call())

    assert isinstance(events[-1], Finish)
    assert (events[-1].response_id, events[-1].response_model) == (
        upstream.first_response_id,
        "resolved-model-v2",
    )
    assert provider.server_address == "127.0.0.1"


# --- what is sent upstream -----------------------------------------------------------------------


async def test_request_body_carries_model_limit_system_and_roles(
    upstream: Upstream, fake: LoopbackServer[Any], provider: Provider
) -> None:
    messages = (
        Message.user("What is 2+2?"),
        Message.assistant("4"),
        Message.user("And 3+3?"),
    )

    call = upstream.call(system="Answer tersely.", messages=messages, max_tokens=77)
    await collect(provider, call)

    [request] = fake.requests
    assert (request.method, request.path) == ("POST", upstream.endpoint)
    sent = upstream.read_body(request.body)
    assert (sent.model, sent.max_tokens) == (upstream.model.provider_model_id, 77)
    assert (sent.system, sent.stream) == ("Answer tersely.", True)
    assert sent.messages == [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3+3?"},
    ]


async def test_empty_system_prompt_sends_no_system_prompt(
    upstream: Upstream, fake: LoopbackServer[Any], provider: Provider
) -> None:
    await collect(provider, upstream.call(system=""))

    sent = upstream.read_body(fake.requests[0].body)
    assert sent.system is None
    assert sent.messages == [{"role": "user", "content": "hi"}]


async def test_a_call_without_tools_sends_no_tool_fields(
    upstream: Upstream, fake: LoopbackServer[Any], provider: Provider
) -> None:
    conversation = (Message.user("hi"), Message.assistant("hello"), Message.user("bye"))

    await collect(provider, upstream.call(messages=conversation))

    body = fake.requests[0].body
    assert "tools" not in body
    assert "tool_choice" not in body
    assert body["messages"] == [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "bye"},
    ]


async def test_api_key_is_sent_as_bearer_token(
    upstream: Upstream, fake: LoopbackServer[Any], provider: Provider
) -> None:
    await collect(provider, upstream.call())

    # anthropic 2.14 sends its key as a bearer token too (older SDKs used `x-api-key`).
    assert fake.requests[0].headers["authorization"] == f"Bearer {API_KEY}"


# --- failures before the first token -------------------------------------------------------------


def _error(kind: ErrorKind, retry_after: str | None = None) -> Callable[[Upstream], HttpError]:
    return lambda upstream: upstream.http_error(kind, retry_after)


@pytest.mark.parametrize(
    ("error", "expected", "retry_after_s"),
    [
        (_error("rate_limited", "7"), RateLimited, 7.0),
        (_error("overloaded", "2.5"), Overloaded, 2.5),
        (_error("overloaded", HTTP_DATE), Overloaded, None),
        (_error("overloaded"), Overloaded, None),
        (_error("server_error"), Overloaded, None),
        (_error("unauthorized"), ProviderRejected, None),
        (_error("bad_request"), ProviderRejected, None),
        (_error("not_found"), ProviderRejected, None),
    ],
    ids=[
        "429",
        "overloaded-retry-after",
        "overloaded-retry-after-date",
        "overloaded",
        "500",
        "401",
        "400",
        "404",
    ],
)
async def test_http_error_maps_to_provider_error_without_sdk_retry(
    upstream: Upstream,
    fake: LoopbackServer[Any],
    provider: Provider,
    error: Callable[[Upstream], HttpError],
    expected: type[ProviderError],
    retry_after_s: float | None,
) -> None:
    fake.script(error(upstream))

    # Bounded, so that an SDK retrying (and first sleeping out Retry-After, which anthropic's
    # does even for a date decades away) fails this test instead of hanging it.
    with pytest.raises(ProviderError) as caught:
        async with asyncio.timeout(5.0):
            await collect(provider, upstream.call())

    assert type(caught.value) is expected
    assert caught.value.model == upstream.model.id
    assert caught.value.retry_after_s == retry_after_s
    assert len(fake.requests) == 1, "the SDK retried; fareway does its own retries"


async def test_server_hanging_past_timeout_raises_provider_timeout(
    upstream: Upstream, fake: LoopbackServer[Any], provider: Provider
) -> None:
    fake.script(Hang())

    with pytest.raises(ProviderTimeout):
        await collect(provider, upstream.call(timeout_s=0.2))

    assert len(fake.requests) == 1
    assert await fake.requests[0].wait_disconnected()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port held (bound, never listening) for the test, so connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


async def test_nothing_listening_raises_provider_unreachable(
    upstream: Upstream, closed_port: int
) -> None:
    provider = upstream.provider(f"http://127.0.0.1:{closed_port}{upstream.fake_cls.api_root}")
    try:
        with pytest.raises(ProviderUnreachable):
            await collect(provider, upstream.call(timeout_s=5.0))
    finally:
        await provider.aclose()


# --- failures mid-stream -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("overloaded", Overloaded), ("server_error", Overloaded), ("rate_limited", RateLimited)],
    ids=["overloaded", "server_error", "rate_limited"],
)
async def test_error_mid_stream_raises_after_earlier_chunks(
    upstream: Upstream,
    fake: LoopbackServer[Any],
    provider: Provider,
    kind: StreamErrorKind,
    expected: type[ProviderError],
) -> None:
    fake.script(upstream.stream_error(kind, chunks=("one ", "two")))
    seen: list[ProviderEvent] = []

    with pytest.raises(ProviderError) as caught:
        await collect_until_error(provider, upstream.call(), seen)

    assert type(caught.value) is expected
    assert caught.value.model == upstream.model.id
    assert [e for e in seen if isinstance(e, TextChunk)] == [TextChunk("one "), TextChunk("two")]
    assert not any(isinstance(e, Finish) for e in seen)
    assert len(fake.requests) == 1


async def test_connection_dropped_mid_stream_raises_provider_unreachable(
    upstream: Upstream, fake: LoopbackServer[Any], provider: Provider
) -> None:
    fake.script(upstream.drop(chunks=("partial",)))
    seen: list[ProviderEvent] = []

    with pytest.raises(ProviderUnreachable):
        await collect_until_error(provider, upstream.call(), seen)

    assert TextChunk("partial") in seen
    assert not any(isinstance(e, Finish) for e in seen)
    assert len(fake.requests) == 1


async def test_stall_mid_stream_past_timeout_raises_provider_timeout(
    upstream: Upstream, fake: LoopbackServer[Any], provider: Provider
) -> None:
    fake.script(upstream.answer(("first", "never"), chunk_delay_s=STALL_S))
    seen: list[ProviderEvent] = []

    with pytest.raises(ProviderTimeout):
        await collect_until_error(provider, upstream.call(timeout_s=0.2), seen)

    assert TextChunk("first") in seen


# --- stopping early ------------------------------------------------------------------------------


async def test_aclose_mid_stream_closes_the_upstream_connection(
    upstream: Upstream, fake: LoopbackServer[Any], provider: Provider
) -> None:
    fake.script(upstream.answer(("first", "never"), chunk_delay_s=STALL_S))
    stream = provider.stream(upstream.call())

    while not isinstance(event := await anext(stream), TextChunk):
        pass
    assert event == TextChunk("first")
    assert not fake.requests[0].disconnected_early
    await stream.aclose()

    assert await fake.requests[0].wait_disconnected(timeout_s=5.0)
