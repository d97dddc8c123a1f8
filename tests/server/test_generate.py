"""Generate, Complete, Route and ListModels through a real server on a free port."""

from __future__ import annotations

import pytest

from fareway.v1 import router_pb2
from tests.server.harness import TENANT_KEY, Harness, metadata, user_request

AUTH = metadata(TENANT_KEY)


async def collect(
    harness: Harness, request: router_pb2.GenerateRequest
) -> list[router_pb2.GenerateEvent]:
    return [event async for event in harness.router.Generate(request, metadata=AUTH)]


async def test_generate_streams_decision_then_deltas_then_usage_then_done(harness: Harness) -> None:
    events = await collect(harness, user_request("What is the capital of France?"))
    kinds = [e.WhichOneof("event") for e in events]

    assert kinds[0] == "decision"
    assert kinds[-1] == "done"
    assert kinds.count("decision") == 1
    assert kinds.count("done") == 1
    assert kinds[1:-2] == ["delta"] * (len(kinds) - 3)
    assert len(kinds) > 3, "at least one delta"
    assert kinds[-2] == "usage"

    usage, done = events[-2].usage, events[-1].done
    assert usage.model == events[0].decision.model
    # sim: one word a token; text that queued while a write was in flight came out joined
    text = "".join(e.delta.text for e in events if e.WhichOneof("event") == "delta")
    assert usage.output_tokens == len(text.split())
    assert done.total.output_tokens == usage.output_tokens
    assert done.total.cost_micros == usage.cost_micros > 0
    assert done.stop_reason == "end_turn"


@pytest.mark.parametrize(
    ("prompt", "model", "tier"),
    [
        ("classify this: spam or not?", "fast-1", "fast"),
        ("analyze the strategic implications of raising prices", "powerful-1", "powerful"),
        ("What is a good name for a bakery in Lisbon?", "balanced-1", "balanced"),
    ],
)
async def test_rules_pick_the_tier(harness: Harness, prompt: str, model: str, tier: str) -> None:
    events = await collect(harness, user_request(prompt))
    decision = events[0].decision

    assert (decision.model, decision.tier, decision.strategy) == (model, tier, "rules")
    assert events[-2].usage.model == model
    assert decision.reason


async def test_decision_explains_candidates_and_cost(harness: Harness) -> None:
    decision = await harness.router.Route(
        user_request("classify this: spam or not?", max_tokens=100), metadata=AUTH
    )

    assert [c.model for c in decision.candidates] == ["fast-1", "balanced-1", "powerful-1"]
    assert decision.candidates[0].score > decision.candidates[1].score
    assert "simple-classification" in decision.reason
    assert decision.signals["rules.matched_index"] == 0
    # Prompt estimate of ~13 tokens at $1/Mtok plus 100 output tokens at $5/Mtok, rounded up.
    assert 500 < decision.estimated_cost_micros < 600
    assert decision.request_id  # made by the server when the caller sent none
    assert decision.budget_remaining_micros == 100_000_000


async def test_request_id_is_echoed(harness: Harness) -> None:
    request = user_request("hello there")
    request.request_id = "req-42"
    events = await collect(harness, request)
    assert events[0].decision.request_id == "req-42"


async def test_route_is_a_dry_run(harness: Harness) -> None:
    await harness.router.Route(user_request("analyze this"), metadata=AUTH)
    state = await harness.ledger.state("acme")
    assert (state.limits[0].spent_micros, state.limits[0].reserved_micros) == (0, 0)


async def test_generate_bills_the_usage_it_reports(harness: Harness) -> None:
    events = await collect(harness, user_request("analyze the market"))
    state = await harness.ledger.state("acme")

    assert state.limits[0].spent_micros == events[-1].done.total.cost_micros
    assert state.limits[0].reserved_micros == 0


async def test_complete_collects_what_generate_streams(harness: Harness) -> None:
    request = user_request("Tell me about routers")
    events = await collect(harness, request)
    reply = await harness.router.Complete(request, metadata=AUTH)

    streamed = "".join(e.delta.text for e in events if e.WhichOneof("event") == "delta")
    assert reply.text == streamed
    assert reply.decision.model == events[0].decision.model
    assert reply.total == events[-1].done.total
    assert list(reply.usage) == [events[-2].usage]
    assert reply.stop_reason == "end_turn"


async def test_pins_are_obeyed(harness: Harness) -> None:
    by_model = await harness.router.Route(
        user_request("classify this: spam?", model="powerful-1"), metadata=AUTH
    )
    by_tier = await harness.router.Route(
        user_request("analyze everything", tier="fast"), metadata=AUTH
    )

    assert (by_model.model, by_model.strategy) == ("powerful-1", "pin")
    assert {c.model: c.excluded_reason for c in by_model.candidates}["fast-1"]
    assert (by_tier.model, by_tier.tier) == ("fast-1", "fast")


async def test_max_tokens_is_capped_by_the_chosen_model(harness: Harness) -> None:
    reply = await harness.router.Complete(
        user_request("classify this: spam?", max_tokens=12000, model="fast-1"), metadata=AUTH
    )
    assert reply.decision.model == "fast-1"  # 12000 > fast-1's 8000, but powerful-1 takes 16000


async def test_list_models_shows_the_catalog(harness: Harness) -> None:
    reply = await harness.router.ListModels(router_pb2.ListModelsRequest(), metadata=AUTH)

    assert [m.id for m in reply.models] == ["fast-1", "balanced-1", "powerful-1"]
    assert list(reply.tiers) == ["fast", "balanced", "powerful"]
    fast = reply.models[0]
    assert (fast.input_price_micros_per_mtok, fast.output_price_micros_per_mtok) == (
        1_000_000,
        5_000_000,
    )
    assert fast.context_window == 200_000
    assert list(fast.capabilities) == ["tools"]
    assert fast.simulated
    assert fast.healthy
    assert fast.provider == "sim"


async def test_health_and_reflection_are_served(harness: Harness) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    health = health_pb2_grpc.HealthStub(harness.channel)
    reply = await health.Check(health_pb2.HealthCheckRequest(service="fareway.v1.RouterService"))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING

    stub = reflection_pb2_grpc.ServerReflectionStub(harness.channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    services = set()
    async for response in stub.ServerReflectionInfo(iter([request])):
        services = {s.name for s in response.list_services_response.service}
    assert {"fareway.v1.RouterService", "fareway.v1.BudgetService"} <= services
    assert "grpc.health.v1.Health" in services
