"""OpenAIProvider's tools, through the real SDK against the loopback chat completions server:
what the request says (function tools, tool_choice, assistant tool_calls, tool messages) and how
calls streamed as `delta.tool_calls` fragments, one argument character a chunk, come out as one
complete ToolUse each, in index order, when the finish_reason arrives."""

from __future__ import annotations

from typing import Any
from unittest.mock import ANY

import pytest

from fareway.core.content import Message, ToolCall, ToolChoice, ToolChoiceMode
from fareway.core.errors import MalformedResponse
from fareway.providers.base import (
    Finish,
    Provider,
    ProviderEvent,
    TextChunk,
    ToolUse,
    UsageReport,
)
from tests.fakes.http_server import StreamedCall
from tests.fakes.openai_server import Answer, FakeOpenAI
from tests.providers.upstreams import (
    OPENAI,
    WEATHER,
    Upstream,
    collect,
    collect_until_error,
    sent,
)


@pytest.fixture
def upstream() -> Upstream:
    return OPENAI


# --- what is sent upstream ------------------------------------------------------------------


async def test_tools_are_sent_as_functions_with_their_parameters(
    fake: FakeOpenAI, provider: Provider
) -> None:
    body = await sent(fake, provider, OPENAI.tool_call())

    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city.",
                "parameters": dict(WEATHER.input_schema),
            },
        },
        {
            "type": "function",
            "function": {
                "name": "get_time",
                "description": "The time now.",
                "parameters": {"type": "object"},
            },
        },
    ]
    assert "tool_choice" not in body


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (ToolChoice(ToolChoiceMode.AUTO), "auto"),
        (ToolChoice(ToolChoiceMode.ANY), "required"),
        (ToolChoice(ToolChoiceMode.NONE), "none"),
        (
            ToolChoice(ToolChoiceMode.TOOL, "get_weather"),
            {"type": "function", "function": {"name": "get_weather"}},
        ),
    ],
)
async def test_tool_choice_is_sent_in_openais_words(
    fake: FakeOpenAI, provider: Provider, choice: ToolChoice, expected: Any
) -> None:
    body = await sent(fake, provider, OPENAI.tool_call(choice=choice))

    assert body["tool_choice"] == expected


async def test_a_conversation_with_tool_turns_becomes_tool_calls_and_tool_messages(
    fake: FakeOpenAI, provider: Provider
) -> None:
    conversation = (
        Message.user("Weather in Paris, and the time?"),
        Message.assistant(
            "Let me look.",
            (
                ToolCall("call_1", "get_weather", '{"city": "Paris"}'),
                ToolCall("call_2", "get_time", "{}"),
            ),
        ),
        Message.tool("call_1", "18C, cloudy"),
        Message.tool("call_2", "14:05"),
        Message.user("Thanks. And Lyon?"),
        Message.assistant("", (ToolCall("call_3", "get_weather", '{"city": "Lyon"}'),)),
        Message.tool("call_3", "20C"),
    )

    body = await sent(fake, provider, OPENAI.tool_call(conversation))

    def function(call_id: str, name: str, arguments: str) -> dict[str, Any]:
        return {
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": arguments},
        }

    assert body["messages"] == [
        {"role": "user", "content": "Weather in Paris, and the time?"},
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [
                function("call_1", "get_weather", '{"city": "Paris"}'),
                function("call_2", "get_time", "{}"),
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C, cloudy"},
        {"role": "tool", "tool_call_id": "call_2", "content": "14:05"},
        {"role": "user", "content": "Thanks. And Lyon?"},
        {
            "role": "assistant",
            "content": None,  # it said nothing, it only called
            "tool_calls": [function("call_3", "get_weather", '{"city": "Lyon"}')],
        },
        {"role": "tool", "tool_call_id": "call_3", "content": "20C"},
    ]


# --- the streamed answer --------------------------------------------------------------------


async def test_streamed_argument_fragments_are_assembled_into_one_tool_use_per_call(
    fake: FakeOpenAI, provider: Provider
) -> None:
    """Each call's arguments arrive one character a chunk; the caller sees each call once,
    whole, in index order, when the finish_reason arrives, then the stop reason "tool_use"."""
    arguments = '{"city": "Paris", "days": [1, 2], "note": "caf\\u00e9 \\"ok\\""}'
    fake.script(
        Answer(
            chunks=("Let me", " check."),
            calls=(
                StreamedCall("call_1", "get_weather", arguments),
                StreamedCall("call_2", "get_time", ""),  # no arguments at all
            ),
            finish_reason="tool_calls",
            input_tokens=30,
            output_tokens=40,
        )
    )

    events = await collect(provider, OPENAI.tool_call())

    assert events == [
        TextChunk("Let me"),
        TextChunk(" check."),
        ToolUse(ToolCall("call_1", "get_weather", arguments)),
        ToolUse(ToolCall("call_2", "get_time", "{}")),
        UsageReport(30, 40),
        Finish("tool_use", ANY, ANY),
    ]


async def test_an_answer_of_tool_calls_ending_with_stop_still_stops_for_tool_use(
    fake: FakeOpenAI, provider: Provider
) -> None:
    """Ollama and older vLLM end a tool-calling answer with "stop"; the caller must still see
    that the answer is a call to run, not a final answer."""
    fake.script(
        Answer(
            chunks=(),
            calls=(StreamedCall("call_7", "get_weather", '{"city": "Oslo"}', fragment_size=3),),
            finish_reason="stop",
        )
    )

    events = await collect(provider, OPENAI.tool_call())

    assert [e for e in events if not isinstance(e, UsageReport)] == [
        ToolUse(ToolCall("call_7", "get_weather", '{"city": "Oslo"}')),
        Finish("tool_use", ANY, ANY),
    ]


@pytest.mark.parametrize(
    ("call", "problem"),
    [
        (StreamedCall("call_1", "get_weather", '{"city": "Par'), "not JSON"),  # cut short
        (StreamedCall("call_1", "get_weather", '{"city": Paris}'), "not JSON"),
        (StreamedCall("call_1", "get_weather", '["Paris"]'), "JSON array"),
        (StreamedCall("", "get_weather", '{"city": "Paris"}'), "no id"),  # unanswerable
    ],
)
async def test_a_malformed_tool_call_is_a_provider_error_not_a_call(
    fake: FakeOpenAI, provider: Provider, call: StreamedCall, problem: str
) -> None:
    fake.script(Answer(chunks=(), calls=(call,), finish_reason="tool_calls"))
    seen: list[ProviderEvent] = []

    with pytest.raises(MalformedResponse, match=f"tool call .*{problem}"):
        await collect_until_error(provider, OPENAI.tool_call(), seen)

    assert not any(isinstance(e, ToolUse | Finish) for e in seen)


async def test_a_call_cut_by_max_tokens_is_dropped_and_the_answer_stops_there(
    fake: FakeOpenAI, provider: Provider
) -> None:
    """The limit the caller set cut the last call: not a provider failure (which would fall
    back to another model and hit the same limit), but an answer that stopped at max_tokens,
    the calls that did complete kept."""
    whole = StreamedCall("call_1", "get_time", "{}")
    cut = StreamedCall("call_2", "get_weather", '{"city": "Par')
    fake.script(Answer(chunks=(), calls=(whole, cut), finish_reason="length"))

    events = await collect(provider, OPENAI.tool_call())

    assert [e for e in events if not isinstance(e, UsageReport)] == [
        ToolUse(ToolCall("call_1", "get_time", "{}")),
        Finish("max_tokens", ANY, ANY),
    ]
