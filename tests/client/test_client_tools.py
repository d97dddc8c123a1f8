"""Tools in the Python client: tool definitions, the tool choice and tool turns on the wire."""

from __future__ import annotations

import json
import re
from types import MappingProxyType

import pytest

from fareway.client import Completion, Decision, Role, Tool, ToolCall, Turn, Usage, convert
from fareway.v1 import router_pb2

CALCULATOR = Tool(
    "calculator",
    "Evaluates arithmetic.",
    {
        "type": "object",
        "properties": {"expression": {"type": "string"}},
        "required": ["expression"],
    },
)
CALL = ToolCall("call_1", "calculator", '{"expression": "2+3"}')


def test_tools_go_with_their_schema_as_json_text() -> None:
    request = convert.generate_request("2+3?", tools=[CALCULATOR, Tool("clock")])

    [calculator, clock] = request.tools
    assert (calculator.name, calculator.description) == ("calculator", "Evaluates arithmetic.")
    assert json.loads(calculator.input_schema_json) == CALCULATOR.input_schema
    assert (clock.name, clock.description) == ("clock", "")
    assert json.loads(clock.input_schema_json) == {"type": "object", "properties": {}}


def test_tools_may_be_given_as_mappings_in_either_shape() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    request = convert.generate_request(
        "weather?",
        tools=[
            {"name": "weather", "description": "Forecast.", "input_schema": schema},
            {"type": "function", "function": {"name": "news", "parameters": schema}},
        ],
    )

    assert [(t.name, t.description, json.loads(t.input_schema_json)) for t in request.tools] == [
        ("weather", "Forecast.", schema),
        ("news", "", schema),
    ]


@pytest.mark.parametrize(
    ("definition", "message"),
    [
        ({"description": "no name"}, '"name" must be a non-empty string'),
        ({"name": "x", "input_schema": "{}"}, '"input_schema" must be a JSON Schema object'),
        ({"name": "x", "description": 3}, '"description" must be a string'),
        ({"name": "x", "parameters": {}}, "unknown field(s) parameters; expected name,"),
        ({"type": "function", "name": "x"}, "unknown field(s) name; expected type, function"),
        ({"type": "web_search", "function": {"name": "x"}}, 'is {"type": "function"'),
        ({"type": "function", "function": {"name": "x", "input_schema": {}}}, "input_schema"),
        ({"type": "function", "function": {"name": "x", "parameters": []}}, '"parameters" must'),
    ],
)
def test_a_definition_that_would_lose_or_misread_a_field_is_refused(
    definition: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        convert.generate_request("hi", tools=[definition])


@pytest.mark.parametrize(
    ("choice", "mode", "name"),
    [
        ("auto", router_pb2.ToolChoice.MODE_AUTO, ""),
        ("any", router_pb2.ToolChoice.MODE_ANY, ""),
        ("none", router_pb2.ToolChoice.MODE_NONE, ""),
        ("calculator", router_pb2.ToolChoice.MODE_TOOL, "calculator"),
    ],
)
def test_the_tool_choice_is_a_mode_or_names_the_tool(choice: str, mode: int, name: str) -> None:
    request = convert.generate_request("2+3?", tools=[CALCULATOR], tool_choice=choice)

    assert request.HasField("tool_choice")
    assert (request.tool_choice.mode, request.tool_choice.name) == (mode, name)


def test_without_a_tool_choice_none_is_sent() -> None:
    assert not convert.generate_request("2+3?", tools=[CALCULATOR]).HasField("tool_choice")
    assert not convert.generate_request("2+3?", tool_choice="").HasField("tool_choice")


def test_tool_turns_reach_the_wire_beside_role_content_pairs() -> None:
    request = convert.generate_request(
        [
            ("user", "Use the calculator: 2+3?"),
            Turn.assistant("Let me compute.", [CALL]),
            Turn.tool("call_1", "5"),
            Turn(Role.ASSISTANT, "It is 5."),
            Turn.user("Thanks"),
        ]
    )

    assert [(m.role, m.content, m.tool_call_id) for m in request.messages] == [
        (router_pb2.ROLE_USER, "Use the calculator: 2+3?", ""),
        (router_pb2.ROLE_ASSISTANT, "Let me compute.", ""),
        (router_pb2.ROLE_TOOL, "5", "call_1"),
        (router_pb2.ROLE_ASSISTANT, "It is 5.", ""),
        (router_pb2.ROLE_USER, "Thanks", ""),
    ]
    [call] = request.messages[1].tool_calls
    assert (call.id, call.name, call.arguments_json) == (CALL.id, CALL.name, CALL.arguments_json)
    assert not request.messages[0].tool_calls


def test_a_turn_with_an_unknown_role_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown role 'system'; known: user, assistant, tool"):
        convert.generate_request([Turn("system", "be brief")])


def test_a_completion_is_the_assistant_turn_that_its_tool_results_follow() -> None:
    decision = Decision("m", "sim", "fast", "rules", "why", (), 0, None, "r", "")
    answer = Completion(decision, "", "tool_use", (), Usage("", 1, 1, 1), 0, tool_calls=(CALL,))

    assert answer.turn == Turn(Role.ASSISTANT, "", (CALL,))
    assert answer.turn == Turn.assistant("", [CALL])


def test_tool_definitions_are_immutable_and_need_no_schema() -> None:
    tool = Tool("clock")

    assert isinstance(tool.input_schema, MappingProxyType)
    assert Tool.from_mapping({"name": "clock"}) == tool
    with pytest.raises(AttributeError):
        tool.name = "other"  # type: ignore[misc]
