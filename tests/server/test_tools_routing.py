"""Routing a request with tools through the real server: the "tools" capability, the tool
definitions in the prompt estimate (context window, cost, budget), the task as what routing
reads in an agent's loop, and per-step routing."""

from __future__ import annotations

import json

import grpc
import pytest
from google.rpc import error_details_pb2

from fareway.budgets.memory import MemoryLedger
from fareway.config.loader import load_config
from fareway.core.clock import ManualClock
from fareway.core.content import Tool
from fareway.routing.tokens import estimate_prompt_tokens
from fareway.v1 import router_pb2
from tests.server.harness import (
    CONFIG_TEMPLATE,
    TENANT_KEY,
    Harness,
    HarnessFactory,
    make_config,
    metadata,
    user_request,
)
from tests.server.status_details import detail

AUTH = metadata(TENANT_KEY)
TASK = "classify this: is 2+2 four?"
SCHEMA = {"type": "object", "properties": {"expression": {"type": "string"}}}
CALCULATOR = router_pb2.Tool(
    name="calculator", description="Evaluates arithmetic", input_schema_json=json.dumps(SCHEMA)
)


def with_tools(
    request: router_pb2.GenerateRequest, *tools: router_pb2.Tool
) -> router_pb2.GenerateRequest:
    request.tools.extend(tools or (CALCULATOR,))
    return request


def big_tool(properties: int) -> router_pb2.Tool:
    """A tool whose schema has `properties` described properties: a large definition."""
    schema = {
        "type": "object",
        "properties": {
            f"field_{i}": {"type": "string", "description": f"the value of field number {i}"}
            for i in range(properties)
        },
    }
    return router_pb2.Tool(
        name="form", description="Fills a form", input_schema_json=json.dumps(schema)
    )


async def serve_without_tools(serve: HarnessFactory, *models: str) -> Harness:
    """The test configuration with the "tools" capability taken from `models`."""
    quality = {"fast-1": "0.7", "balanced-1": "0.85", "powerful-1": "0.95"}
    text = CONFIG_TEMPLATE
    for model in models:
        # Each model's line ends "capabilities: [...], quality: Q}}": drop "tools" from it.
        for before, after in (("[tools]", "[]"), ("[tools, vision]", "[vision]")):
            old = f"capabilities: {before}, quality: {quality[model]}"
            text = text.replace(old, f"capabilities: {after}, quality: {quality[model]}")
    harness: Harness = await serve(make_config(template=text))
    return harness


async def route(harness: Harness, request: router_pb2.GenerateRequest) -> router_pb2.RouteDecision:
    decision: router_pb2.RouteDecision = await harness.router.Route(request, metadata=AUTH)
    return decision


def tool_loop(task: str, result: str) -> router_pb2.GenerateRequest:
    """An agent's conversation: the task, the model's call, the tool's (long, alarming) output."""
    return router_pb2.GenerateRequest(
        messages=[
            router_pb2.Message(role=router_pb2.ROLE_USER, content=task),
            router_pb2.Message(
                role=router_pb2.ROLE_ASSISTANT,
                tool_calls=[
                    router_pb2.ToolCall(
                        id="call_1", name="calculator", arguments_json='{"expression": "2+2"}'
                    )
                ],
            ),
            router_pb2.Message(role=router_pb2.ROLE_TOOL, tool_call_id="call_1", content=result),
        ],
        max_tokens=256,
        tools=[CALCULATOR],
    )


async def test_a_model_without_the_tools_capability_is_excluded_with_the_reason(
    serve: HarnessFactory,
) -> None:
    harness = await serve_without_tools(serve, "fast-1")

    without = await route(harness, user_request(TASK))
    decision = await route(harness, with_tools(user_request(TASK)))

    assert without.model == "fast-1"  # rules: a short classification
    assert decision.model != "fast-1"
    reasons = {c.model: c.excluded_reason for c in decision.candidates}
    assert reasons["fast-1"] == "lacks the 'tools' capability that the request's tools need"
    assert reasons[decision.model] == ""


async def test_tools_no_model_can_serve_are_invalid_on_the_tools_field(
    serve: HarnessFactory,
) -> None:
    harness = await serve_without_tools(serve, "fast-1", "balanced-1", "powerful-1")

    for call in (harness.router.Route, harness.router.Complete):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(with_tools(user_request(TASK)), metadata=AUTH)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        bad = detail(caught.value, error_details_pb2.BadRequest)
        assert bad is not None
        assert [v.field for v in bad.field_violations] == ["tools"]
        assert "'tools' capability" in bad.field_violations[0].description
    [day] = (await harness.ledger.state("acme")).limits
    assert (day.spent_micros, day.reserved_micros) == (0, 0)


async def test_tool_definitions_raise_the_cost_estimate_by_their_tokens(harness: Harness) -> None:
    tool = big_tool(20)
    plain = await route(harness, user_request(TASK, model="fast-1"))
    tooled = await route(harness, with_tools(user_request(TASK, model="fast-1"), tool))

    definition = Tool(
        tool.name, tool.description, json.loads(tool.input_schema_json)
    ).definition_text()
    tokens = estimate_prompt_tokens("", [definition])
    # fast-1 costs $1 per million input tokens: one micro-USD a token.
    assert tooled.estimated_cost_micros - plain.estimated_cost_micros == tokens
    assert tokens > 300


async def test_tool_definitions_count_toward_the_context_window(serve: HarnessFactory) -> None:
    harness: Harness = await serve(make_config(fast_context_window=2000))

    plain = await route(harness, user_request(TASK, 100))
    tooled = await route(harness, with_tools(user_request(TASK, 100), big_tool(200)))

    assert plain.model == "fast-1"
    reasons = {c.model: c.excluded_reason for c in tooled.candidates}
    assert "context window of 2000 tokens" in reasons["fast-1"]
    assert tooled.model != "fast-1"


async def test_tool_definitions_count_toward_the_budget_hold(serve: HarnessFactory) -> None:
    # A day cap the plain request's estimate fits under and the one with tools does not.
    plain_cost = await route(await serve(), user_request(TASK, model="fast-1"))
    cap_usd = (plain_cost.estimated_cost_micros + 50) / 1_000_000
    harness: Harness = await serve(make_config(day_cap_usd=cap_usd))

    reply = await harness.router.Complete(user_request(TASK, model="fast-1"), metadata=AUTH)
    assert reply.usage
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await harness.router.Complete(
            with_tools(user_request(TASK, model="fast-1"), big_tool(20)), metadata=AUTH
        )
    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.parametrize("strategy", ["rules", "semantic", "learned"])
async def test_a_conversation_ending_in_tool_results_routes_by_its_task(
    serve: HarnessFactory, strategy: str
) -> None:
    clock = ManualClock()
    harness: Harness = await serve(
        load_config(), clock=clock, env={"FAREWAY_DEMO_KEY": "k"}, ledger=MemoryLedger(clock)
    )
    result = "analyze the strategic implications of this proof step by step: " + "x = 4; " * 200
    auth = metadata("k")

    alone = with_tools(user_request(TASK, strategy=strategy))
    alone_decision = await harness.router.Route(alone, metadata=auth)
    loop = tool_loop(TASK, result)
    loop.hints.strategy = strategy
    loop_decision = await harness.router.Route(loop, metadata=auth)
    result_alone = await harness.router.Route(
        with_tools(user_request(result, strategy=strategy)), metadata=auth
    )

    assert (loop_decision.model, loop_decision.reason) == (
        alone_decision.model,
        alone_decision.reason,
    )
    assert (result_alone.model, result_alone.reason) != (
        alone_decision.model,
        alone_decision.reason,
    )


@pytest.mark.parametrize(
    ("step_type", "tier"),
    [
        ("planning", "powerful"),
        ("tool_call_decision", "balanced"),
        ("result_classification", "fast"),
    ],
)
async def test_per_step_routing_is_unchanged_with_tools(
    harness: Harness, step_type: str, tier: str
) -> None:
    plain = await route(harness, user_request(TASK, step_type=step_type))
    loop = tool_loop(TASK, "4")
    loop.hints.step_type = step_type
    tooled = await route(harness, loop)

    assert (tooled.strategy, tooled.tier) == ("steps", tier)
    assert (tooled.model, tooled.reason) == (plain.model, plain.reason)
