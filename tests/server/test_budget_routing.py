"""What budgets, rate limits and latency targets do to routing, through the real server."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2

from fareway.budgets.ledger import Limit, OnExceed
from fareway.budgets.windows import Window
from fareway.core.clock import ManualClock
from fareway.v1 import router_pb2
from tests.server.harness import TENANT_KEY, Harness, make_config, metadata, user_request
from tests.server.status_details import detail

AUTH = metadata(TENANT_KEY)
ANALYSIS = "analyze the strategic implications of a price cut"


async def route(harness: Harness, request: router_pb2.GenerateRequest) -> router_pb2.RouteDecision:
    decision: router_pb2.RouteDecision = await harness.router.Route(request, metadata=AUTH)
    return decision


async def estimate(harness: Harness, model: str, text: str = ANALYSIS) -> int:
    pinned = await route(harness, user_request(text, model=model))
    return pinned.estimated_cost_micros


async def set_day_budget(
    harness: Harness, cap: int, spent: int, soft: float = 0.0, on_exceed: OnExceed = OnExceed.REJECT
) -> None:
    await harness.ledger.configure("acme", [Limit(Window.DAY, cap, soft, on_exceed)])
    if spent:
        await harness.ledger.settle("acme", "earlier-spend", spent)


async def test_above_the_soft_fraction_the_choice_moves_to_a_cheaper_tier(harness: Harness) -> None:
    await set_day_budget(harness, cap=10_000_000, spent=8_500_000, soft=0.8)

    decision = await route(harness, user_request(ANALYSIS))

    assert decision.model == "balanced-1"
    assert "downgraded from powerful-1: tenant is above 80% of its day cap" in decision.reason
    assert decision.signals["budget.downgraded"] == 1.0
    assert decision.budget_remaining_micros == 1_500_000


async def test_below_the_soft_fraction_nothing_changes(harness: Harness) -> None:
    await set_day_budget(harness, cap=10_000_000, spent=7_000_000, soft=0.8)
    decision = await route(harness, user_request(ANALYSIS))
    assert decision.model == "powerful-1"
    assert "budget.downgraded" not in decision.signals


async def test_at_the_hard_cap_reject_refuses_with_quota_and_retry_info(harness: Harness) -> None:
    powerful = await estimate(harness, "powerful-1")
    await set_day_budget(harness, cap=1_000_000, spent=1_000_000 - powerful + 1)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await harness.router.Complete(user_request(ANALYSIS), metadata=AUTH)

    error = caught.value
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"this request may cost up to {powerful}" in (error.details() or "")
    assert detail(error, error_details_pb2.QuotaFailure) is not None
    assert detail(error, error_details_pb2.RetryInfo) is not None


async def test_at_the_hard_cap_cheapest_only_serves_the_cheapest_model(harness: Harness) -> None:
    powerful = await estimate(harness, "powerful-1")
    await set_day_budget(
        harness, cap=1_000_000, spent=1_000_000 - powerful + 1, on_exceed=OnExceed.CHEAPEST_ONLY
    )

    reply = await harness.router.Complete(user_request(ANALYSIS), metadata=AUTH)

    assert reply.decision.model == "fast-1"
    assert "only the cheapest model" in reply.decision.reason
    reasons = {c.model: c.excluded_reason for c in reply.decision.candidates}
    assert "only the cheapest model" in reasons["powerful-1"]
    state = await harness.ledger.state("acme")
    assert state.limits[0].spent_micros <= 1_000_000


async def test_cheapest_only_still_refuses_when_even_the_cheapest_does_not_fit(
    harness: Harness,
) -> None:
    fast = await estimate(harness, "fast-1")
    await set_day_budget(
        harness, cap=1_000_000, spent=1_000_000 - fast + 1, on_exceed=OnExceed.CHEAPEST_ONLY
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await route(harness, user_request(ANALYSIS))
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_the_cost_strategy_fits_the_remaining_budget(harness: Harness) -> None:
    balanced = await estimate(harness, "balanced-1", "Tell me about tea")
    await set_day_budget(harness, cap=1_000_000, spent=1_000_000 - balanced)

    decision = await route(harness, user_request("Tell me about tea", strategy="cost"))

    assert decision.model == "balanced-1"
    assert decision.signals["cost.ceiling_micros"] == balanced


@pytest.mark.parametrize("strategy", ["rules", "cost"])
async def test_a_spent_tenant_gets_the_same_refusal_whatever_the_strategy(
    harness: Harness, strategy: str
) -> None:
    await set_day_budget(harness, cap=1_000_000, spent=1_000_000)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await harness.router.Complete(user_request(ANALYSIS, strategy=strategy), metadata=AUTH)

    error = caught.value
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert detail(error, error_details_pb2.RetryInfo) is not None, "the window's reset"
    assert "day" in (error.details() or "")


async def test_requests_per_minute_are_limited_until_the_next_minute(serve: Any) -> None:
    clock = ManualClock()
    harness = await serve(make_config(requests_per_minute=2), clock=clock)
    for _ in range(2):
        await harness.router.Complete(user_request("hello"), metadata=AUTH)

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await harness.router.Complete(user_request("hello"), metadata=AUTH)

    error = caught.value
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "requests_per_minute limit of 2" in (error.details() or "")
    quota = detail(error, error_details_pb2.QuotaFailure)
    assert quota is not None
    assert quota.violations[0].subject == "tenant:acme:requests_per_minute"
    retry = detail(error, error_details_pb2.RetryInfo)
    assert retry is not None
    assert 0 < retry.retry_delay.ToSeconds() <= 60
    await route(harness, user_request("hello"))  # a dry run is not a request to a model

    clock.advance(60)
    await harness.router.Complete(user_request("hello"), metadata=AUTH)


async def test_a_model_predicted_to_miss_the_latency_target_is_skipped(harness: Harness) -> None:
    latency = harness.running.runtime.router.latency
    for _ in range(3):
        latency.record_success("powerful-1", ttft_s=3.0, output_tokens=100, stream_s=2.0)
        latency.record_success("balanced-1", ttft_s=0.4, output_tokens=100, stream_s=1.0)

    decision = await route(harness, user_request(ANALYSIS, latency_target_ms=1000))

    assert decision.model == "balanced-1"
    reasons = {c.model: c.excluded_reason for c in decision.candidates}
    assert (
        reasons["powerful-1"]
        == "predicted time to first token 3000 ms misses the target of 1000 ms"
    )


async def test_when_every_model_is_slow_the_target_does_not_exclude_them(harness: Harness) -> None:
    latency = harness.running.runtime.router.latency
    for model in ("fast-1", "balanced-1", "powerful-1"):
        for _ in range(3):
            latency.record_success(model, ttft_s=5.0, output_tokens=10, stream_s=1.0)

    decision = await route(harness, user_request(ANALYSIS, latency_target_ms=1000))

    assert decision.model == "powerful-1"


async def test_served_requests_feed_the_latency_statistics(harness: Harness) -> None:
    for _ in range(3):
        await harness.router.Complete(user_request(ANALYSIS), metadata=AUTH)
    stats = harness.running.runtime.router.latency.of("powerful-1")
    assert stats.samples == 3
    assert stats.ttft_ms is not None
    assert stats.error_rate == 0.0
