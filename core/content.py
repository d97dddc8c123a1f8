"""The conversation's content model, one for every layer: what a turn says, and the tools.

A turn (`Message`) is a role and a tuple of blocks, so that a turn that calls tools, a tool's
result and plain text are one type that the router, the providers, the engine, the tracing and
the client all read the same way, instead of a string with tool fields beside it:

- `Text`: words, from the user, the model or (inside a `ToolResult`) a tool;
- `Image`: an image the user shows the model (its bytes and media type), before the words;
- `ToolCall`: the model calling a tool, with its arguments as complete JSON text (providers
  stream them in fragments; nothing downstream sees a fragment);
- `ToolResult`: a tool's output, sent back by the caller, answering one `ToolCall` by its id.

Roles: `USER` turns hold images and text; `ASSISTANT` turns hold text and tool calls; `TOOL`
turns hold exactly one tool result (the wire's ROLE_TOOL message: `tool_call_id` and `content`).

A request's `Tool`s (name, description, the JSON Schema of the input, parsed) and `ToolChoice`
(auto, any, none, or one named tool) live here too. Every structural rule (a tool result
answers an earlier call, a choice names a tool that exists, a schema is a JSON object) is
checked once at the edge (`server.convert`), so the types here can assume it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Role(StrEnum):
    """Who wrote a turn."""

    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"


@dataclass(frozen=True)
class Text:
    """Words."""

    text: str


@dataclass(frozen=True)
class Image:
    """An image shown to the model: its encoded bytes and their media type ("image/png")."""

    media_type: str
    data: bytes


IMAGE_TOKENS = 1_600
"""What an image is counted as in a prompt's token estimate: Anthropic's figure for the
largest image it takes without downscaling (about 1.15 megapixels at 750 pixels a token);
OpenAI's high-detail tiles come to about as much. An upper bound, as the budget hold needs."""


@dataclass(frozen=True)
class ToolCall:
    """The model calling a tool: the provider's id for the call, the tool, and the arguments as
    one complete JSON object."""

    id: str
    name: str
    arguments_json: str

    def arguments(self) -> Any:
        """The arguments, parsed (ValueError when they are not JSON)."""
        return json.loads(self.arguments_json)


@dataclass(frozen=True)
class ToolResult:
    """A tool's output, answering the call with id `call_id`."""

    call_id: str
    content: str


Block = Text | Image | ToolCall | ToolResult


@dataclass(frozen=True)
class Message:
    """One turn: who wrote it and what it holds."""

    role: Role
    blocks: tuple[Block, ...]

    @classmethod
    def user(cls, text: str, images: tuple[Image, ...] = ()) -> Message:
        """A user turn: its images, then its text."""
        return cls(Role.USER, (*images, Text(text)))

    @classmethod
    def assistant(cls, text: str, calls: tuple[ToolCall, ...] = ()) -> Message:
        """A model's turn: its text (omitted when empty and it called tools) and its calls."""
        blocks: tuple[Block, ...] = (Text(text),) if text or not calls else ()
        return cls(Role.ASSISTANT, blocks + calls)

    @classmethod
    def tool(cls, call_id: str, content: str) -> Message:
        """A tool's result for the call `call_id`."""
        return cls(Role.TOOL, (ToolResult(call_id, content),))

    @property
    def text(self) -> str:
        """What the turn says in words: its text blocks, or the tool's output."""
        return "".join(
            b.text if isinstance(b, Text) else b.content
            for b in self.blocks
            if isinstance(b, Text | ToolResult)
        )

    def readable(self) -> str:
        """Everything a model reads of this turn, tool calls included: what its size and token
        count are estimated from."""
        calls = self.tool_calls
        if not calls:
            return self.text  # no copy of a megabyte turn
        return "\n".join([self.text, *(f"{c.name}({c.arguments_json})" for c in calls)])

    @property
    def images(self) -> tuple[Image, ...]:
        """The images this turn shows, in order."""
        return tuple(b for b in self.blocks if isinstance(b, Image))

    @property
    def tool_calls(self) -> tuple[ToolCall, ...]:
        """The tools this turn called, in order."""
        return tuple(b for b in self.blocks if isinstance(b, ToolCall))

    @property
    def tool_result(self) -> ToolResult | None:
        """The result a TOOL turn carries; None on other turns."""
        return next((b for b in self.blocks if isinstance(b, ToolResult)), None)


@dataclass(frozen=True)
class Tool:
    """A tool the model may call; `input_schema` is the JSON Schema of its input, parsed."""

    name: str
    description: str
    input_schema: Mapping[str, Any] = field(default_factory=dict)

    def definition_text(self) -> str:
        """The definition as a provider receives it, for counting its tokens."""
        return f"{self.name}\n{self.description}\n{json.dumps(self.input_schema)}"


class ToolChoiceMode(StrEnum):
    """How the model may use the tools."""

    AUTO = "auto"  # the model decides
    ANY = "any"  # it must call one of them
    NONE = "none"  # it must call none
    TOOL = "tool"  # it must call the one named


@dataclass(frozen=True)
class ToolChoice:
    """Whether and which tool the model must call; `name` is set with `TOOL` only."""

    mode: ToolChoiceMode = ToolChoiceMode.AUTO
    name: str = ""


def prompt_texts(messages: Iterable[Message], tools: Iterable[Tool] = ()) -> Iterator[str]:
    """Every text a model reads of a prompt besides its system text: each turn, then each tool
    definition (providers send them with the prompt, and they are billed as input)."""
    for message in messages:
        yield message.readable()
    for tool in tools:
        yield tool.definition_text()
