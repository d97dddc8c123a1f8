"""Traces of an agent's request through the real server: with record_content the attempt span's
GenAI messages carry text, tool-call and tool-result parts and the answer's tool calls; without
it none of that; the route span carries the step type."""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from fareway.telemetry import names
from fareway.telemetry.setup import Telemetry
from fareway.v1 import router_pb2
from tests.server.harness import TENANT_KEY, Harness, metadata
from tests.server.tool_scripts import ToolScripted, call, install, tool_answer

AUTH = metadata(TENANT_KEY)
SECRET = "the secret task"


async def traced(serve: Any, record_content: bool) -> tuple[Harness, InMemorySpanExporter]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    telemetry = Telemetry.from_providers(
        tracer_provider, MeterProvider([InMemoryMetricReader()]), record_content
    )
    harness: Harness = await serve(telemetry=telemetry)
    answer = tool_answer("Next.", call("calculator", '{"x": 2}'))
    install(harness, ToolScripted({m: [answer] for m in ("fast-1", "balanced-1")}))
    return harness, spans


def agent_request(step_type: str = "result_classification") -> router_pb2.GenerateRequest:
    return router_pb2.GenerateRequest(
        messages=[
            router_pb2.Message(role=router_pb2.ROLE_USER, content=SECRET),
            router_pb2.Message(
                role=router_pb2.ROLE_ASSISTANT,
                content="Computing.",
                tool_calls=[router_pb2.ToolCall(id="c1", name="calculator", arguments_json="{}")],
            ),
            router_pb2.Message(role=router_pb2.ROLE_TOOL, tool_call_id="c1", content="4"),
        ],
        max_tokens=100,
        tools=[router_pb2.Tool(name="calculator", description="Adds", input_schema_json="{}")],
        hints=router_pb2.RoutingHints(step_type=step_type),
    )


def spans_of(exporter: InMemorySpanExporter) -> tuple[ReadableSpan, ReadableSpan]:
    [route] = [s for s in exporter.get_finished_spans() if s.name == names.ROUTE_SPAN]
    [attempt] = [s for s in exporter.get_finished_spans() if s.kind is SpanKind.CLIENT]
    return route, attempt


async def test_record_content_traces_tool_parts_and_the_answers_calls(serve: Any) -> None:
    harness, exporter = await traced(serve, record_content=True)

    await harness.router.Complete(agent_request(), metadata=AUTH)

    route, attempt = spans_of(exporter)
    attributes = attempt.attributes or {}
    assert json.loads(str(attributes[names.GEN_AI_INPUT_MESSAGES])) == [
        {"role": "user", "parts": [{"type": "text", "content": SECRET}]},
        {
            "role": "assistant",
            "parts": [
                {"type": "text", "content": "Computing."},
                {"type": "tool_call", "id": "c1", "name": "calculator", "arguments": {}},
            ],
        },
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "4"}]},
    ]
    assert json.loads(str(attributes[names.GEN_AI_OUTPUT_MESSAGES])) == [
        {
            "role": "assistant",
            "parts": [
                {"type": "text", "content": "Next."},
                {"type": "tool_call", "id": "call_calculator", "name": "calculator",
                 "arguments": {"x": 2}},
            ],
            "finish_reason": "tool_use",
        }
    ]  # fmt: skip
    assert (route.attributes or {})[names.STEP_TYPE] == "result_classification"


async def test_without_record_content_no_message_is_traced(serve: Any) -> None:
    harness, exporter = await traced(serve, record_content=False)

    await harness.router.Complete(agent_request(), metadata=AUTH)

    route, attempt = spans_of(exporter)
    assert names.GEN_AI_INPUT_MESSAGES not in (attempt.attributes or {})
    assert names.GEN_AI_OUTPUT_MESSAGES not in (attempt.attributes or {})
    for span in exporter.get_finished_spans():
        assert not any(
            SECRET in str(v) or "calculator" in str(v) for v in (span.attributes or {}).values()
        ), span.name
    assert (route.attributes or {})[names.STEP_TYPE] == "result_classification"


async def test_a_request_without_a_step_type_has_no_step_attribute(serve: Any) -> None:
    harness, exporter = await traced(serve, record_content=False)

    await harness.router.Complete(agent_request(step_type=""), metadata=AUTH)

    route, _ = spans_of(exporter)
    assert names.STEP_TYPE not in (route.attributes or {})
