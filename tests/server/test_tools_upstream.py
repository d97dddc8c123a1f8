"""An agent's tool loop through the real gRPC server, against loopback Anthropic and
OpenAI-compatible servers reached by the real SDKs (issue 12's acceptance).

The upstream streams each tool call's arguments one character a fragment; the caller must get
each call once, complete, as a `tool_call` event and `done.stop_reason` "tool_use" (or in
Complete's `tool_calls`). The caller then sends the assistant turn with its calls and a ROLE_TOOL
result for each back, the upstream receives them in its own format, and answers text.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from fareway.core.clock import SystemClock
from fareway.v1 import router_pb2
from tests.fakes import anthropic_server, openai_server
from tests.fakes.http_server import LoopbackServer, Streamed, StreamedCall
from tests.server.harness import TENANT_KEY, Harness, make_config, metadata

AUTH = metadata(TENANT_KEY)

SCHEMA = {
    "type": "object",
    "properties": {"expression": {"type": "string"}},
    "required": ["expression"],
}
CALCULATOR = router_pb2.Tool(
    name="calculator", description="Evaluates arithmetic.", input_schema_json=json.dumps(SCHEMA)
)
QUESTION = "What is 6 * 7, and 2 ** 10?"
CALLS = (
    StreamedCall("call_1", "calculator", '{"expression": "6 * 7"}'),
    StreamedCall("call_2", "calculator", '{"expression": "2 ** 10"}'),
)
RESULTS = {"call_1": "42", "call_2": "1024"}


@dataclass(frozen=True)
class Upstream:
    """One API's fake and how to script and read it."""

    provider: str  # the test configuration's provider serving the models
    fake_cls: type[anthropic_server.FakeAnthropic] | type[openai_server.FakeOpenAI]
    calls: Callable[..., Streamed]  # an answer that streams tool calls
    text: Callable[..., Streamed]  # an answer of text
    sent_tools: Callable[[dict[str, Any]], list[str]]  # the tool names a request offered
    sent_results: Callable[[dict[str, Any]], dict[str, str]]  # its last turns' results by id
    sent_calls: Callable[[dict[str, Any]], list[tuple[str, str, Any]]]  # its assistant's calls


def _anthropic_results(body: dict[str, Any]) -> dict[str, str]:
    last = body["messages"][-1]
    assert last["role"] == "user"  # every result of the turn's calls in one user message
    return {b["tool_use_id"]: b["content"] for b in last["content"] if b["type"] == "tool_result"}


def _anthropic_calls(body: dict[str, Any]) -> list[tuple[str, str, Any]]:
    blocks = body["messages"][-2]["content"]
    return [(b["id"], b["name"], b["input"]) for b in blocks if b["type"] == "tool_use"]


def _openai_results(body: dict[str, Any]) -> dict[str, str]:
    tools = [m for m in body["messages"] if m["role"] == "tool"]
    return {m["tool_call_id"]: m["content"] for m in tools}


def _openai_calls(body: dict[str, Any]) -> list[tuple[str, str, Any]]:
    (assistant,) = [m for m in body["messages"] if m["role"] == "assistant"]
    return [
        (c["id"], c["function"]["name"], json.loads(c["function"]["arguments"]))
        for c in assistant["tool_calls"]
    ]


ANTHROPIC = Upstream(
    provider="upstream",
    fake_cls=anthropic_server.FakeAnthropic,
    calls=lambda **kw: anthropic_server.Answer(chunks=(), stop_reason="tool_use", **kw),
    text=anthropic_server.Answer,
    sent_tools=lambda body: [t["name"] for t in body["tools"]],
    sent_results=_anthropic_results,
    sent_calls=_anthropic_calls,
)
OPENAI = Upstream(
    provider="compatible",
    fake_cls=openai_server.FakeOpenAI,
    calls=lambda **kw: openai_server.Answer(chunks=(), finish_reason="tool_calls", **kw),
    text=openai_server.Answer,
    sent_tools=lambda body: [t["function"]["name"] for t in body["tools"]],
    sent_results=_openai_results,
    sent_calls=_openai_calls,
)


@pytest.fixture(params=[ANTHROPIC, OPENAI], ids=["anthropic", "openai"])
def upstream(request: pytest.FixtureRequest) -> Upstream:
    chosen: Upstream = request.param
    return chosen


@pytest.fixture
async def fake(upstream: Upstream) -> AsyncIterator[LoopbackServer[Any]]:
    async with upstream.fake_cls() as server:
        yield server


@pytest.fixture
async def server(serve: Any, upstream: Upstream, fake: LoopbackServer[Any]) -> Harness:
    config = make_config(provider=upstream.provider, base_url=fake.base_url)
    harness: Harness = await serve(config, clock=SystemClock())
    return harness


def ask(*messages: router_pb2.Message) -> router_pb2.GenerateRequest:
    return router_pb2.GenerateRequest(
        messages=list(messages)
        or [router_pb2.Message(role=router_pb2.ROLE_USER, content=QUESTION)],
        max_tokens=512,
        tools=[CALCULATOR],
        tool_choice=router_pb2.ToolChoice(mode=router_pb2.ToolChoice.MODE_ANY),
    )


async def test_tool_calls_arrive_complete_and_the_results_lead_to_a_final_answer(
    server: Harness, fake: LoopbackServer[Any], upstream: Upstream
) -> None:
    fake.script(
        upstream.calls(calls=CALLS), upstream.text(chunks=("6 * 7 = 42", ", 2 ** 10 = 1024"))
    )

    events = [e async for e in server.router.Generate(ask(), metadata=AUTH)]

    kinds = [e.WhichOneof("event") for e in events]
    assert kinds == ["decision", "tool_call", "tool_call", "usage", "done"]
    calls = [e.tool_call for e in events if e.HasField("tool_call")]
    assert [(c.id, c.name, c.arguments_json) for c in calls] == [
        (s.id, s.name, s.arguments) for s in CALLS
    ]
    assert events[-1].done.stop_reason == "tool_use"
    assert upstream.sent_tools(fake.requests[0].body) == ["calculator"]

    # The agent runs the tools and sends their results back, each answering its call by id.
    question = router_pb2.Message(role=router_pb2.ROLE_USER, content=QUESTION)
    assistant = router_pb2.Message(role=router_pb2.ROLE_ASSISTANT, tool_calls=calls)
    results = [
        router_pb2.Message(role=router_pb2.ROLE_TOOL, tool_call_id=c.id, content=RESULTS[c.id])
        for c in calls
    ]
    reply = await server.router.Complete(ask(question, assistant, *results), metadata=AUTH)

    assert reply.text == "6 * 7 = 42, 2 ** 10 = 1024"
    assert reply.stop_reason == "end_turn"
    assert not reply.tool_calls
    second = fake.requests[1].body
    assert upstream.sent_calls(second) == [
        ("call_1", "calculator", {"expression": "6 * 7"}),
        ("call_2", "calculator", {"expression": "2 ** 10"}),
    ]
    assert upstream.sent_results(second) == RESULTS


async def test_complete_returns_the_assembled_tool_calls(
    server: Harness, fake: LoopbackServer[Any], upstream: Upstream
) -> None:
    fake.script(upstream.calls(calls=CALLS[:1]))

    reply = await server.router.Complete(ask(), metadata=AUTH)

    assert reply.stop_reason == "tool_use"
    assert reply.text == ""
    assert [(c.id, c.name, json.loads(c.arguments_json)) for c in reply.tool_calls] == [
        ("call_1", "calculator", {"expression": "6 * 7"})
    ]


async def test_a_malformed_tool_call_is_a_failure_the_caller_sees_never_a_broken_call(
    server: Harness, fake: LoopbackServer[Any], upstream: Upstream
) -> None:
    """The first model's argument fragments do not make a JSON object: it failed before its
    first output, so the next candidate answers, and the fallback says why."""
    broken = StreamedCall("call_1", "calculator", '{"expression": "6 *')
    fake.script(upstream.calls(calls=(broken,)), upstream.calls(calls=CALLS[:1]))

    reply = await server.router.Complete(ask(), metadata=AUTH)

    (fallback,) = reply.fallbacks
    assert fallback.error.startswith("malformed_response:")
    assert "calculator" in fallback.error
    assert [c.arguments_json for c in reply.tool_calls] == [CALLS[0].arguments]
