"""The AsyncClient end to end, against the real server of tests/server's harness."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest

from fareway.client import (
    Aborted,
    AsyncClient,
    BudgetLimit,
    DeadlineExceeded,
    Decision,
    Done,
    Fallback,
    InvalidArgument,
    OnExceed,
    PermissionDenied,
    ResourceExhausted,
    StreamEvent,
    TextDelta,
    Unauthenticated,
    Unavailable,
    Usage,
    Window,
)
from fareway.core.clock import SystemClock
from tests.client.conftest import paced_config
from tests.fakes.anthropic_server import Answer, FakeAnthropic, HttpError, StreamError
from tests.server.harness import ADMIN_KEY, TENANT_KEY, Harness, make_config


def target(harness: Harness) -> str:
    return f"127.0.0.1:{harness.running.port}"


async def ledger(harness: Harness) -> tuple[int, int]:
    """(spent, reserved) of tenant acme's day limit."""
    state = await harness.ledger.state("acme")
    return state.limits[0].spent_micros, state.limits[0].reserved_micros


async def wait_until_released(harness: Harness, within_s: float = 5) -> None:
    for _ in range(int(within_s / 0.01)):
        if (await ledger(harness))[1] == 0:
            return
        await asyncio.sleep(0.01)
    pytest.fail(f"the reservation was not released within {within_s} s")


async def drain(events: AsyncIterator[StreamEvent], into: list[StreamEvent]) -> None:
    """Append every event to `into`, so a test sees what came before an error."""
    async for event in events:
        into.append(event)


async def test_generate_yields_a_decision_first_then_deltas_usage_and_done_last(
    harness: Harness,
) -> None:
    async with AsyncClient(target(harness), TENANT_KEY) as client:
        events = [e async for e in client.generate("What is the capital of France?")]

    decision, *middle, usage, done = events
    assert isinstance(decision, Decision)
    assert isinstance(done, Done)
    assert isinstance(usage, Usage)
    assert middle
    assert all(isinstance(e, TextDelta) for e in middle)
    assert usage.model == decision.model == "balanced-1"
    assert done.total.cost_micros == usage.cost_micros > 0
    assert await ledger(harness) == (usage.cost_micros, 0)


async def test_complete_route_and_list_models(harness: Harness) -> None:
    prompt = "classify this: spam or not?"
    async with AsyncClient(target(harness), TENANT_KEY) as client:
        streamed = [e async for e in client.generate(prompt, max_tokens=100)]
        completion = await client.complete(prompt, max_tokens=100)
        decision = await client.route(prompt, max_tokens=100, request_id="dry-run")
        models = await client.list_models()

    assert completion.text == "".join(e.text for e in streamed if isinstance(e, TextDelta))
    assert completion.total == streamed[-1].total  # type: ignore[union-attr]
    assert (decision.model, decision.strategy, decision.request_id) == (
        "fast-1",
        "rules",
        "dry-run",
    )
    assert decision.budget_remaining_micros == 100_000_000 - 2 * completion.total.cost_micros
    assert [(m.id, m.tier, m.simulated) for m in models] == [
        ("fast-1", "fast", True),
        ("balanced-1", "balanced", True),
        ("powerful-1", "powerful", True),
    ]


async def test_budgets_get_and_set(harness: Harness) -> None:
    async with (
        AsyncClient(target(harness), TENANT_KEY) as tenant,
        AsyncClient(target(harness), ADMIN_KEY) as admin,
    ):
        before = await tenant.get_budget()
        written = await admin.set_budget(
            "acme", [BudgetLimit(Window.DAY, 10, on_exceed=OnExceed.REJECT)], latency_target_ms=50
        )
        after = await tenant.get_budget()
        with pytest.raises(ResourceExhausted):
            await tenant.complete("hello")

    assert (before.tenant, before.limits[0].cap_micros) == ("acme", 100_000_000)
    assert before.limits[0].resets_at == datetime(2026, 1, 16, tzinfo=UTC)
    assert written == after
    assert (after.limits[0].cap_micros, after.latency_target_ms) == (10, 50)


async def test_errors_carry_their_code_and_details(serve: Any) -> None:
    capped = await serve(make_config(day_cap_usd=0.0001))
    async with (
        AsyncClient(target(capped), TENANT_KEY) as tenant,
        AsyncClient(target(capped), "not-a-key") as stranger,
        AsyncClient(target(capped), ADMIN_KEY) as admin,
    ):
        with pytest.raises(InvalidArgument) as invalid:
            await tenant.route([("assistant", "hello")], max_tokens=0)
        with pytest.raises(Unauthenticated) as unknown:
            await stranger.get_budget()
        with pytest.raises(PermissionDenied, match="tenant key") as denied:
            [e async for e in admin.generate("hi")]
        with pytest.raises(ResourceExhausted) as exhausted:
            [e async for e in tenant.generate("analyze this", max_tokens=1000)]

    assert invalid.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(invalid.value.field_violations) == {"messages", "max_tokens"}
    assert unknown.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert denied.value.code == grpc.StatusCode.PERMISSION_DENIED
    assert exhausted.value.quota_violations.keys() == {"tenant:acme"}
    assert exhausted.value.retry_after == timedelta(hours=12)
    assert await ledger(capped) == (0, 0)


async def test_a_deadline_raises_deadline_exceeded(serve: Any) -> None:
    harness = await serve(paced_config(ttft_ms=2000), clock=SystemClock())
    async with AsyncClient(target(harness), TENANT_KEY, timeout_s=0.2) as client:
        with pytest.raises(DeadlineExceeded) as unary:
            await client.complete("hello")
        with pytest.raises(DeadlineExceeded):
            [e async for e in client.generate("hello", timeout_s=0.1)]

    assert unary.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    await wait_until_released(harness)


async def test_provider_failures_raise_unavailable_and_aborted(serve: Any) -> None:
    async with FakeAnthropic() as fake:
        harness = await serve(
            make_config(provider="upstream", base_url=fake.base_url), clock=SystemClock()
        )
        fake.script(
            HttpError(529, "overloaded_error"),
            HttpError(500, "api_error"),
            HttpError(429, "rate_limit_error", "slow down", retry_after="7"),
        )
        async with AsyncClient(target(harness), TENANT_KEY) as client:
            with pytest.raises(Unavailable) as unavailable:
                await client.complete("classify this: x")
            fake.script(StreamError(chunks=("Half",)))
            received: list[StreamEvent] = []
            with pytest.raises(Aborted) as aborted:
                await drain(client.generate("classify this: x"), into=received)

    assert unavailable.value.code == grpc.StatusCode.UNAVAILABLE
    assert unavailable.value.reason == "RATE_LIMITED"
    assert unavailable.value.metadata["model"] == "powerful-1"
    assert unavailable.value.retry_after == timedelta(seconds=7)
    assert aborted.value.code == grpc.StatusCode.ABORTED
    assert aborted.value.metadata["model"] == "fast-1"
    assert [type(e) for e in received] == [Decision, TextDelta]
    spent, reserved = await ledger(harness)
    assert spent > 0, "the partial answer is billed"
    assert reserved == 0


async def test_a_fallback_is_an_event(serve: Any) -> None:
    async with FakeAnthropic() as fake:
        harness = await serve(
            make_config(provider="upstream", base_url=fake.base_url), clock=SystemClock()
        )
        fake.script(HttpError(529, "overloaded_error", "Overloaded"), Answer(output_tokens=7))
        async with AsyncClient(target(harness), TENANT_KEY) as client:
            events = [e async for e in client.generate("classify this: x")]

    fallback = events[1]
    assert isinstance(fallback, Fallback)
    assert (fallback.from_model, fallback.to_model) == ("fast-1", "balanced-1")
    assert fallback.error.startswith("overloaded:")


async def test_breaking_out_of_generate_cancels_the_call(serve: Any) -> None:
    harness = await serve(paced_config(), clock=SystemClock())  # an answer takes about 40 s
    async with AsyncClient(target(harness), TENANT_KEY) as client:
        async for event in client.generate("hello", max_tokens=4000):
            if isinstance(event, Decision):
                estimate = event.estimated_cost_micros
            if isinstance(event, TextDelta):
                break
        await wait_until_released(harness)

    spent, _ = await ledger(harness)
    assert spent > 0, "the tokens streamed before the break are billed"
    assert spent < estimate / 10, "the answer stopped when the loop did"


async def test_closing_the_iterator_cancels_the_call(serve: Any) -> None:
    harness = await serve(paced_config(), clock=SystemClock())
    async with AsyncClient(target(harness), TENANT_KEY) as client:
        async with contextlib.aclosing(client.generate("hello", max_tokens=4000)) as events:
            received = [await anext(events), await anext(events)]
            assert (await ledger(harness))[1] > 0, "the answer is in flight"
        await wait_until_released(harness, within_s=1)

    assert [type(e) for e in received] == [Decision, TextDelta]


async def test_async_with_closes_the_channel(harness: Harness) -> None:
    async with AsyncClient(target(harness), TENANT_KEY) as client:
        assert await client.list_models()
    with pytest.raises(RuntimeError, match="closed"):
        await client.list_models()
    with pytest.raises(RuntimeError, match="closed"):
        await anext(client.generate("hello"))


async def test_credentials_make_a_tls_channel(harness: Harness) -> None:
    # The test server speaks plaintext, so a TLS client fails its handshake.
    tls = grpc.ssl_channel_credentials()
    client = AsyncClient(target(harness), TENANT_KEY, credentials=tls, timeout_s=5)
    async with client:
        with pytest.raises(Unavailable, match=r"(?i)handshake"):
            await client.list_models()
