"""The simulated provider's tool rule: when it calls a tool, which one, with what arguments, and
how it answers once the tool's result comes back; offering tools changes nothing else."""

from __future__ import annotations

import dataclasses

import pytest

from fareway.config.loader import load_config
from fareway.core.clock import ManualClock
from fareway.core.content import (
    Message,
    Tool,
    ToolCall,
    ToolChoice,
    ToolChoiceMode,
    prompt_texts,
)
from fareway.providers.base import (
    Finish,
    ProviderCall,
    ProviderEvent,
    TextChunk,
    ToolUse,
    UsageReport,
)
from fareway.providers.sim import SimProvider
from fareway.routing.catalog import ModelSpec
from fareway.routing.tokens import estimate_prompt_tokens

HAIKU: ModelSpec = load_config().models[0].spec()

CALCULATOR = Tool(
    "calculator",
    "Evaluates arithmetic.",
    {
        "type": "object",
        "properties": {
            "expression": {"type": "string"},
            "precision": {"type": "integer"},
            "exact": {"type": "boolean"},
        },
        "required": ["expression", "precision"],
    },
)
SEARCH = Tool(
    "web_search",
    "Searches the web.",
    {
        "type": "object",
        "properties": {
            "query": {"type": "string"},
            "max_price": {"type": "number"},
            "safe": {"type": "boolean"},
            "sites": {"type": "array"},
        },
    },
)
TOOLS = (CALCULATOR, SEARCH)


def call(
    *messages: Message, choice: ToolChoice | None = None, tools: tuple[Tool, ...] = TOOLS
) -> ProviderCall:
    return ProviderCall(HAIKU, "", messages, 1000, tools=tools, tool_choice=choice)


async def run(request: ProviderCall) -> list[ProviderEvent]:
    return [event async for event in SimProvider(ManualClock()).stream(request)]


async def called(request: ProviderCall) -> ToolCall | None:
    """The call the answer makes, or None when it answers text."""
    uses = [e.call for e in await run(request) if isinstance(e, ToolUse)]
    assert len(uses) <= 1
    return uses[0] if uses else None


def text_of(events: list[ProviderEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextChunk))


async def test_a_user_turn_naming_a_tool_gets_a_call_with_arguments_from_its_text() -> None:
    request = call(Message.user("  Use the Calculator on 12.5 * 4, then add 3 "))

    events = await run(request)

    (use,) = [e for e in events if isinstance(e, ToolUse)]
    assert use.call.name == "calculator"
    assert use.call.id.startswith("call_")
    # Only the required properties: the text stripped, the first number as an integer.
    assert use.call.arguments() == {
        "expression": "Use the Calculator on 12.5 * 4, then add 3",
        "precision": 12,
    }
    input_tokens = estimate_prompt_tokens("", prompt_texts(request.messages, TOOLS))
    assert events[0] == UsageReport(input_tokens, 0)
    assert not [e for e in events if isinstance(e, TextChunk)]
    assert isinstance(events[-2], UsageReport)
    assert events[-2].input_tokens == input_tokens
    assert events[-2].output_tokens > 0
    assert events[-1] == Finish("tool_use")


async def test_without_required_properties_every_property_is_filled() -> None:
    used = await called(call(Message.user("web_search: shoes under 59.90 dollars")))

    assert used is not None
    assert used.arguments() == {
        "query": "web_search: shoes under 59.90 dollars",
        "max_price": 59.9,
        "safe": False,
        "sites": [],
    }


async def test_a_number_property_with_no_number_in_the_text_is_zero() -> None:
    used = await called(call(Message.user("ask the calculator something")))

    assert used is not None
    assert used.arguments()["precision"] == 0


@pytest.mark.parametrize(
    "text",
    [
        "What is fareway?",
        "calculators are great",  # not the whole word
        "my recalculator broke",
        "web search for shoes",  # the name is web_search
    ],
)
async def test_text_that_names_no_tool_gets_a_text_answer_as_without_tools(text: str) -> None:
    """Auto choice and no tool named: the same answer as if no tools were offered."""
    with_tools = await run(call(Message.user(text)))
    without = await run(call(Message.user(text), tools=()))

    assert text_of(with_tools) == text_of(without) != ""
    assert with_tools[-1] == without[-1] == Finish("end_turn")
    assert not any(isinstance(e, ToolUse) for e in with_tools)


@pytest.mark.parametrize(
    ("text", "choice", "tool"),
    [
        ("Please WEB_SEARCH for shoes.", None, "web_search"),  # the named one, any case
        ("Please web_search for shoes.", ToolChoice(ToolChoiceMode.AUTO), "web_search"),
        ("What is fareway?", ToolChoice(ToolChoiceMode.ANY), "calculator"),  # the first
        (
            "web_search then calculator",
            ToolChoice(ToolChoiceMode.ANY),
            "calculator",
        ),  # first offered
        ("Please web_search.", ToolChoice(ToolChoiceMode.TOOL, "calculator"), "calculator"),
    ],
)
async def test_which_tool_is_called(text: str, choice: ToolChoice | None, tool: str) -> None:
    used = await called(call(Message.user(text), choice=choice))

    assert used is not None
    assert used.name == tool


async def test_tool_choice_none_never_calls_a_tool() -> None:
    used = await called(
        call(Message.user("use the calculator"), choice=ToolChoice(ToolChoiceMode.NONE))
    )

    assert used is None


async def test_the_same_prompt_gets_the_same_call_and_another_prompt_another_id() -> None:
    first = await called(call(Message.user("calculator: 2 + 2")))
    again = await called(call(Message.user("calculator: 2 + 2")))
    other = await called(call(Message.user("calculator: 3 + 3")))

    assert first is not None
    assert other is not None
    assert first == again
    assert other.id != first.id


async def test_an_agent_loop_ends_with_a_text_answer_that_shows_the_tools_result() -> None:
    """Step one calls the tool; once its result is the last turn, the answer is text (even with
    tool_choice any) and starts with the result."""
    question = Message.user("calculator: what is 6 * 7?")
    must_call = ToolChoice(ToolChoiceMode.ANY)
    used = await called(call(question, choice=must_call))
    assert used is not None

    events = await run(
        call(
            question, Message.assistant("", (used,)), Message.tool(used.id, "42"), choice=must_call
        )
    )

    assert not any(isinstance(e, ToolUse) for e in events)
    assert text_of(events).startswith("The result is 42. ")
    assert events[-1] == Finish("end_turn")


async def test_several_tool_results_are_all_in_the_answer() -> None:
    calls = (ToolCall("call_a", "calculator", "{}"), ToolCall("call_b", "web_search", "{}"))
    conversation = (
        Message.user("calculator and web_search please"),
        Message.assistant("", calls),
        Message.tool("call_a", "42"),
        Message.tool("call_b", "3 shops"),
    )

    events = await run(call(*conversation))

    assert text_of(events).startswith("The results are 42, 3 shops. ")


async def test_a_tool_result_answer_is_deterministic_and_respects_max_tokens() -> None:
    conversation = (
        Message.user("calculator: 6 * 7"),
        Message.assistant("", (ToolCall("call_a", "calculator", "{}"),)),
        Message.tool("call_a", "42"),
    )
    short = dataclasses.replace(call(*conversation), max_tokens=3)

    assert await run(call(*conversation)) == await run(call(*conversation))
    events = await run(short)
    assert text_of(events) == "The result is"
    assert events[-1] == Finish("max_tokens")
