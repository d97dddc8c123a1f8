"""Bad tool input through the real server: INVALID_ARGUMENT naming the field, from Route,
Complete and Generate alike, and no budget hold left behind."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2

from fareway.v1 import router_pb2
from tests.server.harness import TENANT_KEY, Harness, metadata
from tests.server.status_details import detail

AUTH = metadata(TENANT_KEY)
USER, ASSISTANT, TOOL = router_pb2.ROLE_USER, router_pb2.ROLE_ASSISTANT, router_pb2.ROLE_TOOL
SCHEMA = '{"type": "object"}'


def calculator(schema: str = SCHEMA, name: str = "calculator") -> router_pb2.Tool:
    return router_pb2.Tool(name=name, description="Evaluates", input_schema_json=schema)


def turn(role: int, content: str = "", call_id: str = "", **call: str) -> router_pb2.Message:
    """A turn; `call` (id, name, arguments_json) makes an assistant turn's one tool call."""
    message = router_pb2.Message(role=role, content=content, tool_call_id=call_id)
    if call:
        message.tool_calls.append(router_pb2.ToolCall(**call))
    return message


def request(
    *turns: router_pb2.Message,
    tools: tuple[router_pb2.Tool, ...] = (),
    choice: router_pb2.ToolChoice | None = None,
) -> router_pb2.GenerateRequest:
    built = router_pb2.GenerateRequest(
        messages=list(turns) or [turn(USER, "what is 2+2?")], max_tokens=64, tools=list(tools)
    )
    if choice is not None:
        built.tool_choice.CopyFrom(choice)
    return built


ASKED = turn(USER, "what is 2+2?")
CALLED = turn(ASSISTANT, id="c1", name="calculator", arguments_json='{"expression": "2+2"}')


@pytest.mark.parametrize(
    ("request_", "field", "words"),
    [
        pytest.param(
            request(ASKED, CALLED, turn(TOOL, "4", call_id="c9"), tools=(calculator(),)),
            "messages[2].tool_call_id",
            "no earlier assistant turn called a tool with id 'c9'",
            id="result-without-call",
        ),
        pytest.param(
            request(tools=(calculator("{not json"),)),
            "tools[0].input_schema_json",
            "must be a JSON object",
            id="schema-not-json",
        ),
        pytest.param(
            request(tools=(calculator('{"type": 12}'),)),
            "tools[0].input_schema_json",
            "not a JSON Schema",
            id="schema-not-a-schema",
        ),
        pytest.param(
            request(
                tools=(calculator(),),
                choice=router_pb2.ToolChoice(mode=router_pb2.ToolChoice.MODE_TOOL, name="search"),
            ),
            "tool_choice.name",
            "unknown tool 'search'; known: calculator",
            id="choice-unknown-tool",
        ),
        pytest.param(
            request(
                ASKED,
                turn(ASSISTANT, id="c1", name="calculator", arguments_json="{2+2"),
                turn(TOOL, "4", call_id="c1"),
                tools=(calculator(),),
            ),
            "messages[1].tool_calls[0].arguments_json",
            "must be a JSON object",
            id="call-arguments-not-json",
        ),
        pytest.param(
            request(tools=(calculator(), calculator())),
            "tools[1].name",
            "'calculator' appears twice",
            id="duplicate-tool",
        ),
        pytest.param(
            request(choice=router_pb2.ToolChoice(mode=router_pb2.ToolChoice.MODE_ANY)),
            "tool_choice",
            "needs tools",
            id="choice-without-tools",
        ),
    ],
)
async def test_bad_tool_input_is_invalid_argument_naming_the_field(
    harness: Harness, request_: router_pb2.GenerateRequest, field: str, words: str
) -> None:
    for call in (harness.router.Route, harness.router.Complete):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call(request_, metadata=AUTH)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        bad = detail(caught.value, error_details_pb2.BadRequest)
        assert bad is not None
        assert words in {v.field: v.description for v in bad.field_violations}[field]

    stream = harness.router.Generate(request_, metadata=AUTH)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stream.read()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [day] = (await harness.ledger.state("acme")).limits
    assert (day.spent_micros, day.reserved_micros) == (0, 0)


async def test_a_conversation_ending_in_tool_results_is_valid(harness: Harness) -> None:
    decision = await harness.router.Route(
        request(ASKED, CALLED, turn(TOOL, "4", call_id="c1"), tools=(calculator(),)),
        metadata=AUTH,
    )

    assert decision.model
