"""Tool calls through the real server: the engine streams a provider's `ToolUse` as `tool_call`
events in order with the text, treats it as output (the first token, the answer), bills it, and
Complete collects it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from fareway.core.errors import Overloaded
from fareway.routing.tokens import estimate_tokens
from fareway.v1 import router_pb2
from tests.server.harness import TENANT_KEY, Harness, kinds, metadata
from tests.server.tool_scripts import ToolScripted, call, install, tool_answer

AUTH = metadata(TENANT_KEY)
SCHEMA = {"type": "object", "properties": {"expression": {"type": "string"}}}
ADD = call("calculator", '{"expression": "2+2"}')


def tool_request(text: str = "classify this: 2+2 as a sum") -> router_pb2.GenerateRequest:
    """A request offering the calculator tool (rules send it to fast-1)."""
    return router_pb2.GenerateRequest(
        messages=[router_pb2.Message(role=router_pb2.ROLE_USER, content=text)],
        max_tokens=256,
        tools=[
            router_pb2.Tool(
                name="calculator", description="Evaluates", input_schema_json=json.dumps(SCHEMA)
            )
        ],
    )


async def drain(stream: AsyncIterator[router_pb2.GenerateEvent], into: list[Any]) -> None:
    async for event in stream:
        into.append(event)


async def test_generate_streams_tool_calls_in_order_with_the_text(harness: Harness) -> None:
    second = call("calculator", '{"expression": "3*3"}', "call_2")
    provider = install(
        harness, ToolScripted({"fast-1": [tool_answer("Let me compute.", ADD, second)]})
    )

    events = [e async for e in harness.router.Generate(tool_request(), metadata=AUTH)]

    assert kinds(events) == ["decision", "delta", "tool_call", "tool_call", "usage", "done"]
    assert events[1].delta.text == "Let me compute."
    calls = [e.tool_call for e in events[2:4]]
    assert [(c.id, c.name, c.arguments_json) for c in calls] == [
        ("call_calculator", "calculator", '{"expression": "2+2"}'),
        ("call_2", "calculator", '{"expression": "3*3"}'),
    ]
    assert events[-1].done.stop_reason == "tool_use"
    [sent] = provider.calls_to("fast-1")
    assert [t.name for t in sent.tools] == ["calculator"]


async def test_a_tool_call_alone_is_an_answer(harness: Harness) -> None:
    # No text at all: the call is the first token (ttft measured, no fallback taken).
    install(harness, ToolScripted({"fast-1": [tool_answer(ADD)]}))

    events = [e async for e in harness.router.Generate(tool_request(), metadata=AUTH)]

    assert kinds(events) == ["decision", "tool_call", "usage", "done"]
    assert events[-1].done.stop_reason == "tool_use"
    assert events[-1].done.total.output_tokens == 7


async def test_complete_returns_the_tool_calls(harness: Harness) -> None:
    install(harness, ToolScripted({"fast-1": [tool_answer("Computing.", ADD)]}))

    reply = await harness.router.Complete(tool_request(), metadata=AUTH)

    assert reply.text == "Computing."
    assert [(c.id, c.name, c.arguments_json) for c in reply.tool_calls] == [
        ("call_calculator", "calculator", '{"expression": "2+2"}')
    ]
    assert reply.stop_reason == "tool_use"


async def test_a_failure_before_any_output_falls_back_but_one_after_a_tool_call_does_not(
    harness: Harness,
) -> None:
    # rules put this on fast-1; its fallback order goes on to balanced-1.
    install(
        harness,
        ToolScripted(
            {
                "fast-1": [[Overloaded("busy")], [*tool_answer(ADD)[:1], Overloaded("cut")]],
                "balanced-1": [tool_answer(ADD)],
            }
        ),
    )

    fell_back = [e async for e in harness.router.Generate(tool_request(), metadata=AUTH)]
    assert "fallback" in kinds(fell_back)
    assert fell_back[-1].done.stop_reason == "tool_use"

    broken: list[router_pb2.GenerateEvent] = []
    stream = harness.router.Generate(tool_request(), metadata=AUTH)
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await drain(stream, broken)
    assert "cut" in (failure.value.details() or "")
    assert kinds(broken) == ["decision", "tool_call"]


async def test_without_reported_usage_the_bill_counts_the_arguments(harness: Harness) -> None:
    arguments = json.dumps({"expression": "1+" * 200 + "1"})
    install(
        harness,
        ToolScripted({"fast-1": [tool_answer(call("calculator", arguments), output_tokens=None)]}),
    )

    events = [e async for e in harness.router.Generate(tool_request(), metadata=AUTH)]

    usage = events[-1].done.total
    assert usage.output_tokens >= estimate_tokens(arguments)
    [state] = (await harness.ledger.state("acme")).limits
    assert (state.spent_micros, state.reserved_micros) == (usage.cost_micros, 0)
