"""Tools through both clients and a real server (its sim models): a tool call comes back as a
`ToolCall` event and in `Completion.tool_calls`, the result goes back as a `Turn.tool`, and the
conversation continues to an answer. sim calls a tool when the last user turn names it, with
the turn's text as each required string argument, and answers a tool's result with "The result
is <result>."."""

from __future__ import annotations

import pytest

from fareway.client import (
    AsyncClient,
    Client,
    Decision,
    Done,
    InvalidArgument,
    TextDelta,
    ToolCall,
    Turn,
)
from tests.client.conftest import ServerThread
from tests.client.test_client_tools import CALCULATOR
from tests.server.harness import TENANT_KEY, Harness

QUESTION = "Use the calculator: 2 + 3?"


def test_a_tool_call_completes_and_its_result_continues_the_conversation(
    server: ServerThread,
) -> None:
    with Client(server.target, TENANT_KEY, timeout_s=30) as client:
        called = client.complete(QUESTION, tools=[CALCULATOR])
        [call] = called.tool_calls
        answered = client.complete(
            [Turn.user(QUESTION), called.turn, Turn.tool(call.id, "5")], tools=[CALCULATOR]
        )

    assert called.stop_reason == "tool_use"
    assert (call.name, call.arguments()) == ("calculator", {"expression": QUESTION})
    assert called.turn.tool_calls == (call,)
    assert answered.stop_reason == "end_turn"
    assert answered.tool_calls == ()
    assert answered.text.startswith("The result is 5.")


def test_generate_yields_the_tool_call_between_the_decision_and_done(
    server: ServerThread,
) -> None:
    with Client(server.target, TENANT_KEY, timeout_s=30) as client:
        events = list(client.generate("what is 2+3?", tools=[CALCULATOR], tool_choice="any"))

    kinds = [type(e) for e in events if not isinstance(e, TextDelta)]
    assert kinds[0] is Decision
    assert kinds[-1] is Done
    [call] = [e for e in events if isinstance(e, ToolCall)]
    assert call.arguments() == {"expression": "what is 2+3?"}
    assert isinstance(events[-1], Done)
    assert events[-1].stop_reason == "tool_use"


async def test_the_async_client_sends_tools_and_tool_turns_too(harness: Harness) -> None:
    async with AsyncClient(f"127.0.0.1:{harness.running.port}", TENANT_KEY) as client:
        streamed = [e async for e in client.generate(QUESTION, tools=[CALCULATOR])]
        [call] = [e for e in streamed if isinstance(e, ToolCall)]
        answered = await client.complete(
            [Turn.user(QUESTION), Turn.assistant("", [call]), Turn.tool(call.id, "5")],
            tools=[CALCULATOR],
            tool_choice="none",
        )

    assert answered.text.startswith("The result is 5.")


def test_the_server_names_a_bad_tool_choice_and_an_unanswered_result(
    server: ServerThread,
) -> None:
    with Client(server.target, TENANT_KEY, timeout_s=30) as client:
        with pytest.raises(InvalidArgument) as choice:
            client.route(QUESTION, tools=[CALCULATOR], tool_choice="clock")
        with pytest.raises(InvalidArgument) as result:
            client.route([Turn.user(QUESTION), Turn.tool("call_nowhere", "5")], tools=[CALCULATOR])

    assert "unknown tool 'clock'" in choice.value.field_violations["tool_choice.name"]
    assert "messages[1].tool_call_id" in result.value.field_violations
