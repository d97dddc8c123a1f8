"""AnthropicProvider's tools, through the real SDK against the loopback Messages API: what the
request says (tools, tool_choice, tool_use and tool_result blocks) and how a streamed tool call,
its input split one character an `input_json_delta`, comes out as one complete ToolUse."""

from __future__ import annotations

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
from tests.fakes.anthropic_server import Answer, FakeAnthropic
from tests.fakes.http_server import StreamedCall
from tests.providers.upstreams import (
    ANTHROPIC,
    WEATHER,
    Upstream,
    collect,
    collect_until_error,
    sent,
)

LOOKUPS = (
    ToolCall("toolu_1", "get_weather", '{"city": "Paris"}'),
    ToolCall("toolu_2", "get_time", "{}"),
)


@pytest.fixture
def upstream() -> Upstream:
    return ANTHROPIC


# --- what is sent upstream ------------------------------------------------------------------


async def test_tools_are_sent_with_their_input_schemas(
    fake: FakeAnthropic, provider: Provider
) -> None:
    body = await sent(fake, provider, ANTHROPIC.tool_call())

    assert body["tools"] == [
        {
            "name": "get_weather",
            "description": "The weather in a city.",
            "input_schema": dict(WEATHER.input_schema),
        },
        # A tool without a schema still says its input is an object, as Anthropic requires.
        {"name": "get_time", "description": "The time now.", "input_schema": {"type": "object"}},
    ]
    assert "tool_choice" not in body  # none given: the API's default (auto)


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (ToolChoice(ToolChoiceMode.AUTO), {"type": "auto"}),
        (ToolChoice(ToolChoiceMode.ANY), {"type": "any"}),
        (ToolChoice(ToolChoiceMode.NONE), {"type": "none"}),
        (ToolChoice(ToolChoiceMode.TOOL, "get_weather"), {"type": "tool", "name": "get_weather"}),
    ],
)
async def test_tool_choice_is_sent_in_anthropics_words(
    fake: FakeAnthropic, provider: Provider, choice: ToolChoice, expected: dict[str, str]
) -> None:
    body = await sent(fake, provider, ANTHROPIC.tool_call(choice=choice))

    assert body["tool_choice"] == expected


async def test_a_conversation_with_tool_turns_becomes_tool_use_and_tool_result_blocks(
    fake: FakeAnthropic, provider: Provider
) -> None:
    """Consecutive tool results, and the user turn after them, are one user message: Anthropic
    wants roles to alternate and every result of a turn's calls in the next message."""
    conversation = (
        Message.user("Weather in Paris, and the time?"),
        Message.assistant("Let me look.", LOOKUPS),
        Message.tool("toolu_1", "18C, cloudy"),
        Message.tool("toolu_2", "14:05"),
        Message.user("Thanks. Dress advice?"),
        Message.assistant("", (ToolCall("toolu_3", "get_weather", '{"city": "Lyon"}'),)),
        Message.tool("toolu_3", "20C"),
    )

    body = await sent(fake, provider, ANTHROPIC.tool_call(conversation))

    assert body["messages"] == [
        {"role": "user", "content": "Weather in Paris, and the time?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me look."},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C, cloudy"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "14:05"},
                {"type": "text", "text": "Thanks. Dress advice?"},
            ],
        },
        {
            "role": "assistant",
            # No empty text block: Anthropic rejects one.
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_3",
                    "name": "get_weather",
                    "input": {"city": "Lyon"},
                }
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_3", "content": "20C"}],
        },
    ]


# --- the streamed answer --------------------------------------------------------------------


async def test_streamed_tool_input_is_assembled_into_one_tool_use_per_call(
    fake: FakeAnthropic, provider: Provider
) -> None:
    """Each call's input arrives one character an event; the caller sees each call once, whole,
    when its block stops, then the stop reason "tool_use"."""
    arguments = '{"city": "Paris", "days": [1, 2], "note": "caf\\u00e9 \\"ok\\""}'
    fake.script(
        Answer(
            chunks=("Let me", " check."),
            calls=(
                StreamedCall("toolu_1", "get_weather", arguments),
                StreamedCall("toolu_2", "get_time", ""),  # no input at all
            ),
            stop_reason="tool_use",
            input_tokens=30,
            output_tokens=40,
        )
    )

    events = await collect(provider, ANTHROPIC.tool_call())

    assert events == [
        UsageReport(30, 1),
        TextChunk("Let me"),
        TextChunk(" check."),
        ToolUse(ToolCall("toolu_1", "get_weather", arguments)),
        ToolUse(ToolCall("toolu_2", "get_time", "{}")),
        UsageReport(30, 40),
        Finish("tool_use", ANY, ANY),
    ]


async def test_a_tool_only_answer_yields_just_the_call(
    fake: FakeAnthropic, provider: Provider
) -> None:
    fake.script(
        Answer(
            chunks=(),
            calls=(StreamedCall("toolu_9", "get_weather", '{"city": "Oslo"}'),),
            stop_reason="tool_use",
        )
    )

    events = await collect(provider, ANTHROPIC.tool_call(choice=ToolChoice(ToolChoiceMode.ANY)))

    assert [e for e in events if not isinstance(e, UsageReport)] == [
        ToolUse(ToolCall("toolu_9", "get_weather", '{"city": "Oslo"}')),
        Finish("tool_use", ANY, ANY),
    ]


@pytest.mark.parametrize(
    "arguments",
    [
        '{"city": "Par',  # cut short: the fragments never close the object
        '{"city": Paris}',  # not JSON
        '["Paris"]',  # JSON, but not an object
    ],
)
async def test_malformed_tool_input_is_a_provider_error_not_a_call(
    fake: FakeAnthropic, provider: Provider, arguments: str
) -> None:
    fake.script(
        Answer(calls=(StreamedCall("toolu_1", "get_weather", arguments),), stop_reason="tool_use")
    )
    seen: list[ProviderEvent] = []

    with pytest.raises(MalformedResponse, match=r"tool.*JSON"):
        await collect_until_error(provider, ANTHROPIC.tool_call(), seen)

    assert not any(isinstance(e, ToolUse | Finish) for e in seen)


async def test_a_call_cut_by_max_tokens_is_dropped_and_the_answer_stops_there(
    fake: FakeAnthropic, provider: Provider
) -> None:
    """The limit the caller set cut the call: not a provider failure (which would fall back to
    another model and hit the same limit), but an answer that stopped at max_tokens."""
    fake.script(
        Answer(
            chunks=("Checking",),
            calls=(StreamedCall("toolu_1", "get_weather", '{"city": "Par'),),
            stop_reason="max_tokens",
        )
    )

    events = await collect(provider, ANTHROPIC.tool_call())

    assert [e for e in events if not isinstance(e, UsageReport)] == [
        TextChunk("Checking"),
        Finish("max_tokens", ANY, ANY),
    ]
