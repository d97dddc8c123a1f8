"""The request life against a loopback Anthropic server through the real SDK: usage accounting,
fallbacks, failures mid-answer, client cancellation and deadlines. Nothing is left reserved."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2

from fareway.core.clock import SystemClock
from fareway.v1 import router_pb2
from tests.fakes.anthropic_server import Answer, Drop, FakeAnthropic, Hang, HttpError, StreamError
from tests.server.harness import TENANT_KEY, Harness, kinds, make_config, metadata, user_request
from tests.server.status_details import detail

AUTH = metadata(TENANT_KEY)


@pytest.fixture
async def fake() -> AsyncIterator[FakeAnthropic]:
    async with FakeAnthropic() as server:
        yield server


@pytest.fixture
async def upstream(serve: Any, fake: FakeAnthropic) -> Harness:
    """A server whose three models live behind the loopback Anthropic server."""
    harness: Harness = await serve(
        make_config(provider="upstream", base_url=fake.base_url), clock=SystemClock()
    )
    return harness


async def ledger_figures(harness: Harness) -> tuple[int, int]:
    state = await harness.ledger.state("acme")
    return state.limits[0].spent_micros, state.limits[0].reserved_micros


async def test_tokens_and_usage_come_from_the_provider_stream(
    upstream: Harness, fake: FakeAnthropic
) -> None:
    fake.script(Answer(chunks=("Spam", ".", " Definitely"), input_tokens=1200, output_tokens=300))
    request = user_request("classify this: spam or not?", max_tokens=500)
    request.system = "Be brief."
    events = [e async for e in upstream.router.Generate(request, metadata=AUTH)]

    assert kinds(events) == ["decision", "delta", "usage", "done"]
    assert "".join(e.delta.text for e in events if e.HasField("delta")) == "Spam. Definitely"
    usage = events[-2].usage
    # fast-1 costs $1/Mtok in and $5/Mtok out: 1200 in + 300 out = 1200 + 1500 micro-USD.
    assert (usage.model, usage.input_tokens, usage.output_tokens, usage.cost_micros) == (
        "fast-1",
        1200,
        300,
        2700,
    )
    assert await ledger_figures(upstream) == (2700, 0)

    (sent,) = fake.requests
    assert sent.body["model"] == "up-fast"
    assert sent.body["max_tokens"] == 500
    assert sent.body["system"] == "Be brief."
    assert sent.body["messages"] == [{"role": "user", "content": "classify this: spam or not?"}]
    # The SDK sends the key as x-api-key or as a bearer token, depending on its version.
    assert "sk-test" in (
        sent.headers.get("x-api-key", ""),
        sent.headers.get("authorization", "")[7:],
    )


async def test_a_failure_before_the_first_token_falls_back_to_the_next_candidate(
    upstream: Harness, fake: FakeAnthropic
) -> None:
    fake.script(HttpError(529, "overloaded_error", "Overloaded"), Answer(output_tokens=7))
    events = [
        e async for e in upstream.router.Generate(user_request("classify this: x"), metadata=AUTH)
    ]

    assert kinds(events)[:2] == ["decision", "fallback"]
    fallback = events[1].fallback
    assert (fallback.from_model, fallback.to_model) == ("fast-1", "balanced-1")
    assert fallback.error.startswith("overloaded:")
    assert events[-2].usage.model == "balanced-1"
    assert [r.body["model"] for r in fake.requests] == ["up-fast", "up-balanced"]
    spent, reserved = await ledger_figures(upstream)
    assert (spent, reserved) == (events[-1].done.total.cost_micros, 0)


async def test_every_candidate_failing_is_unavailable_with_the_last_error(
    upstream: Harness, fake: FakeAnthropic
) -> None:
    fake.script(
        HttpError(500, "api_error"),
        HttpError(529, "overloaded_error"),
        HttpError(429, "rate_limit_error", "slow down", retry_after="7"),
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await upstream.router.Complete(user_request("classify this: x"), metadata=AUTH)

    error = caught.value
    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert "all 3 candidate model(s) failed" in (error.details() or "")
    info = detail(error, error_details_pb2.ErrorInfo)
    assert info is not None
    assert info.reason == "RATE_LIMITED"
    assert info.metadata["model"] == "powerful-1"
    retry = detail(error, error_details_pb2.RetryInfo)
    assert retry is not None
    assert retry.retry_delay.seconds == 7
    assert await ledger_figures(upstream) == (0, 0)


@pytest.mark.parametrize("failure", [StreamError(chunks=("Half",)), Drop(chunks=("Half",))])
async def test_a_failure_after_tokens_is_aborted_and_the_partial_answer_billed(
    upstream: Harness, fake: FakeAnthropic, failure: Any
) -> None:
    fake.script(failure)
    received, error = await stream_until_error(upstream, user_request("classify this: x"))

    assert error.code() == grpc.StatusCode.ABORTED
    assert "failed mid-answer" in (error.details() or "")
    assert kinds(received) == ["decision", "delta"], "no fallback once tokens were sent"
    assert len(fake.requests) == 1
    spent, reserved = await ledger_figures(upstream)
    assert reserved == 0
    assert spent >= 12, "at least the 12 input tokens the stream reported are billed"


async def test_client_cancellation_closes_the_provider_stream(
    upstream: Harness, fake: FakeAnthropic
) -> None:
    fake.script(Answer(chunks=tuple(f"w{i} " for i in range(200)), chunk_delay_s=0.02))
    call = upstream.router.Generate(user_request("classify this: x"), metadata=AUTH)
    seen = 0
    async for event in call:
        seen += event.WhichOneof("event") == "delta"
        if seen == 3:
            call.cancel()
            break

    assert await fake.requests[0].wait_disconnected(timeout_s=5)
    assert not fake.requests[0].finished
    await wait_for_settlement(upstream)
    spent, _ = await ledger_figures(upstream)
    assert spent > 0, "what was streamed before the cancel is billed"


async def test_a_deadline_ends_the_call_and_the_upstream_request(
    upstream: Harness, fake: FakeAnthropic
) -> None:
    fake.script(Hang())
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await upstream.router.Complete(user_request("classify this: x"), metadata=AUTH, timeout=0.5)

    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert await fake.requests[0].wait_disconnected(timeout_s=10)
    await wait_for_settlement(upstream)
    assert await ledger_figures(upstream) == (0, 0)


async def stream_until_error(
    harness: Harness, request: router_pb2.GenerateRequest
) -> tuple[list[router_pb2.GenerateEvent], grpc.aio.AioRpcError]:
    """The events a failing Generate sent before its error, and the error."""
    received: list[router_pb2.GenerateEvent] = []
    try:
        async for event in harness.router.Generate(request, metadata=AUTH):
            received.append(event)
    except grpc.aio.AioRpcError as error:
        return received, error
    pytest.fail("the call succeeded")


async def wait_for_settlement(harness: Harness) -> None:
    """The server settles as it unwinds the cancelled call; give it a bounded moment."""
    for _ in range(200):
        if (await ledger_figures(harness))[1] == 0:
            return
        await asyncio.sleep(0.01)
    pytest.fail("the reservation was never released")
