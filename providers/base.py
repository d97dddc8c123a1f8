"""The provider plug-in point: one call in, a stream of text, tool calls and usage out.

A provider is an async generator: the caller iterates it and, to stop early (client gone,
deadline, hedge lost), calls `aclose()`, which must close the upstream connection at once.
Failures are raised as `fareway.core.errors.ProviderError` subclasses so that fallbacks treat
every provider alike.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Protocol

from fareway.core.content import Message, Tool, ToolCall, ToolChoice
from fareway.routing.catalog import ModelSpec


@dataclass(frozen=True)
class ProviderCall:
    """One model attempt: which model, what to send, and how long it may take at most."""

    model: ModelSpec
    system: str
    messages: tuple[Message, ...]
    max_tokens: int
    timeout_s: float | None = None
    # A cascade wants the model's self-assessment: `system` already ends with
    # `assessment.INSTRUCTION` (see `assessment.with_instruction`), and the answer should end
    # with the tail that `assessment.AssessmentParser` strips. Real providers send the call as
    # it is; `sim` writes the tail itself.
    self_assessment: bool = False
    # A cascade judges the answer by its token log-probabilities: providers that can report
    # them (OpenAI-compatible) ask for them and put them on each `TextChunk`; others ignore it.
    logprobs: bool = False
    # The tools the model may call, and whether and which it must; the router sends a request
    # with tools only to models with the "tools" capability.
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None


@dataclass(frozen=True)
class TextChunk:
    """A piece of the answer, with the natural-log probability of each of its tokens when the
    call asked for them and the provider reports them (empty otherwise)."""

    text: str
    logprobs: tuple[float, ...] = ()


@dataclass(frozen=True)
class ToolUse:
    """The model called a tool: one complete call, its argument fragments already assembled
    into a JSON object (a provider whose fragments do not make one raises ProviderError)."""

    call: ToolCall


@dataclass(frozen=True)
class UsageReport:
    """Token counts so far, as the provider reports them (cumulative, not increments)."""

    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class Finish:
    """The model stopped normally; always the last event. `response_id` is the provider's id
    for the answer (Anthropic's message id, OpenAI's completion id) and `response_model` the
    model it says answered (an alias resolved to a version, say); "" when it reports none.
    Traces carry both, so an answer can be found in the provider's own logs."""

    stop_reason: str
    response_id: str = ""
    response_model: str = ""


ProviderEvent = TextChunk | ToolUse | UsageReport | Finish


class Provider(Protocol):
    """Streams one model attempt. `server_address` is the host calls go to ("" for a provider
    with no server), which traces record as the conventional `server.address`."""

    name: str
    genai_name: str  # the GenAI semantic conventions' provider name: "anthropic", "openai"
    simulated: bool
    server_address: str

    def stream(self, call: ProviderCall) -> AsyncGenerator[ProviderEvent, None]:
        """Start the call and yield its events; raise ProviderError on failure."""
        ...

    async def aclose(self) -> None:
        """Release connections at shutdown."""
        ...
