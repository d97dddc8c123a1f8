"""Routing beyond rules through the real server: cost ceilings, agent steps, constraints."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2

from fareway.v1 import router_pb2
from tests.server.harness import TENANT_KEY, Harness, make_config, metadata, user_request
from tests.server.status_details import detail

AUTH = metadata(TENANT_KEY)
ANALYSIS = "analyze the strategic implications of a price cut"


async def route(harness: Harness, request: router_pb2.GenerateRequest) -> router_pb2.RouteDecision:
    decision: router_pb2.RouteDecision = await harness.router.Route(request, metadata=AUTH)
    return decision


async def estimates(harness: Harness, text: str, max_tokens: int) -> dict[str, int]:
    """What each model would cost for this request, read off pinned dry runs."""
    costs = {}
    for model in ("fast-1", "balanced-1", "powerful-1"):
        pinned = await route(harness, user_request(text, max_tokens, model=model))
        costs[model] = pinned.estimated_cost_micros
    return costs


async def test_a_cost_ceiling_moves_the_choice_down_the_tiers(harness: Harness) -> None:
    cost = await estimates(harness, ANALYSIS, 1000)
    assert cost["fast-1"] < cost["balanced-1"] < cost["powerful-1"]

    unlimited = await route(harness, user_request(ANALYSIS, 1000))
    below_powerful = await route(
        harness, user_request(ANALYSIS, 1000, max_cost_micros=cost["powerful-1"] - 1)
    )
    below_balanced = await route(
        harness, user_request(ANALYSIS, 1000, max_cost_micros=cost["balanced-1"] - 1)
    )

    assert unlimited.model == "powerful-1"
    assert below_powerful.model == "balanced-1"
    assert below_balanced.model == "fast-1"
    reasons = {c.model: c.excluded_reason for c in below_balanced.candidates}
    assert (
        f"estimated cost {cost['powerful-1']} micro-USD is above max_cost_micros"
        in reasons["powerful-1"]
    )
    assert reasons["fast-1"] == ""


async def test_below_the_cheapest_model_is_refused_with_quota_details(harness: Harness) -> None:
    cost = await estimates(harness, ANALYSIS, 1000)
    request = user_request(ANALYSIS, 1000, max_cost_micros=cost["fast-1"] - 1)

    for call in (harness.router.Route, harness.router.Complete):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(request, metadata=AUTH)
        error = caught.value
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert f"the cheapest, fast-1, is estimated at {cost['fast-1']} micro-USD" in (
            error.details() or ""
        )
        quota = detail(error, error_details_pb2.QuotaFailure)
        assert quota is not None
        assert quota.violations[0].subject == "request:max_cost_micros"
    state = await harness.ledger.state("acme")
    assert (state.limits[0].spent_micros, state.limits[0].reserved_micros) == (0, 0)


async def test_the_cost_strategy_picks_the_best_model_that_fits(harness: Harness) -> None:
    text = "Tell me about tea"
    cost = await estimates(harness, text, 500)

    best = await route(harness, user_request(text, 500, strategy="cost"))
    capped = await route(
        harness, user_request(text, 500, strategy="cost", max_cost_micros=cost["balanced-1"])
    )

    assert (best.model, best.strategy) == ("powerful-1", "cost")
    assert capped.model == "balanced-1"
    assert capped.signals["cost.ceiling_micros"] == cost["balanced-1"]
    assert capped.signals["cost.estimated_micros"] == cost["balanced-1"]
    assert "best-quality model whose estimated cost" in capped.reason


@pytest.mark.parametrize(
    ("step_type", "tier"),
    [
        ("planning", "powerful"),
        ("final_synthesis", "powerful"),
        ("tool_call_decision", "balanced"),
        ("summarization", "balanced"),
        ("result_classification", "fast"),
    ],
)
async def test_each_agent_step_lands_on_its_tier(
    harness: Harness, step_type: str, tier: str
) -> None:
    # The text would send a rules-routed request to the powerful tier; the step type decides.
    reply = await harness.router.Complete(
        user_request(ANALYSIS, step_type=step_type), metadata=AUTH
    )

    assert (reply.decision.tier, reply.decision.strategy) == (tier, "steps")
    assert f"step type '{step_type}' maps to the {tier} tier" == reply.decision.reason
    assert reply.usage[0].model == reply.decision.model


async def test_an_explicit_strategy_or_pin_outranks_the_step_type(harness: Harness) -> None:
    by_strategy = await route(
        harness, user_request(ANALYSIS, step_type="planning", strategy="rules")
    )
    by_pin = await route(harness, user_request(ANALYSIS, step_type="planning", tier="fast"))

    assert (by_strategy.strategy, by_strategy.tier) == ("rules", "powerful")
    assert (by_pin.strategy, by_pin.tier) == ("pin", "fast")


async def test_an_unknown_step_type_is_invalid_and_names_the_known_ones(harness: Harness) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await route(harness, user_request("hi", step_type="daydreaming"))

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    message = caught.value.details() or ""
    assert "unknown step type 'daydreaming'" in message
    assert "planning, final_synthesis, tool_call_decision" in message


async def test_a_prompt_too_long_for_a_model_skips_it_with_the_reason(serve: Any) -> None:
    harness = await serve(make_config(fast_context_window=2000))
    long_prompt = "classify " + "word " * 3000  # ~5000 tokens by the conservative estimate

    decision = await route(harness, user_request(long_prompt, 100))

    reasons = {c.model: c.excluded_reason for c in decision.candidates}
    assert "context window of 2000 tokens" in reasons["fast-1"]
    assert decision.model != "fast-1"
    assert [c.model for c in decision.candidates][-1] == "fast-1", "excluded ones come last"


async def test_a_missing_capability_skips_the_model(harness: Harness) -> None:
    decision = await route(
        harness, user_request("classify this: cat?", required_capabilities=["vision"])
    )

    assert decision.model == "balanced-1"
    reasons = {c.model: c.excluded_reason for c in decision.candidates}
    assert reasons["fast-1"] == "lacks capabilities: vision"


async def test_when_every_model_is_excluded_the_error_says_why(harness: Harness) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await route(harness, user_request("hi " * 300_000))  # fits no context window

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "the last, powerful-1, prompt (~" in (caught.value.details() or "")
