"""What the client hands back and takes in: frozen dataclasses, no protobuf.

Money is an integer number of micro-USD (1 USD = 1,000,000), as on the wire; token counts and
durations are integers too. `StreamEvent` is the union `Client.generate` yields.
"""

from __future__ import annotations

import json
import mimetypes
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any, TypedDict


class Role(StrEnum):
    """Who wrote a message of the conversation."""

    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"
    """A tool's result, sent back by you: write it as `Turn.tool(call_id, content)`."""


class CascadeMode(StrEnum):
    """How a cascade (the `cascade` strategy) shows answers it may still abandon."""

    BUFFERED = "buffered"
    """No text until an answer is accepted: you never see an abandoned answer."""
    SPECULATIVE = "speculative"
    """Text streams at once; an `Escalation` with `discard_previous` says to drop it."""


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The model called a tool; answer it with `Turn.tool(call.id, result)`."""

    id: str
    name: str
    arguments_json: str
    """The arguments as one complete JSON object."""

    def arguments(self) -> Any:
        """The arguments, parsed."""
        return json.loads(self.arguments_json)


def _no_input() -> Mapping[str, Any]:
    """The input schema of a tool that takes no arguments."""
    return MappingProxyType({"type": "object", "properties": {}})


@dataclass(frozen=True, slots=True)
class Image:
    """An image for a user turn: its encoded bytes and their media type ("image/png",
    "image/jpeg", "image/gif" or "image/webp"; at most 5 MiB)."""

    media_type: str
    data: bytes

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Image:
        """The image in `path`, its media type from the file name's extension."""
        name = os.fspath(path)
        media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
        with open(name, "rb") as handle:
            return cls(media_type, handle.read())


@dataclass(frozen=True, slots=True)
class Turn:
    """One turn of a conversation, as the wire's `Message` has it: what a `(role, content)`
    pair says, plus the tool fields an agent loop needs.

    - `Turn.user(text, images)`: what the user says, and the images it shows the model;
    - `Turn.assistant(text, tool_calls)`: the model's earlier answer, with the tools it called
      (`Completion.turn` is the answer you just received, ready to append);
    - `Turn.tool(call_id, content)`: a tool's result, answering the call with that id.
    """

    role: Role | str
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    """On an assistant turn: the tools it called, in order (`content` may then be empty)."""
    tool_call_id: str = ""
    """On a tool turn: the id of the `ToolCall` this result answers."""
    images: tuple[Image, ...] = ()
    """On a user turn: images shown to the model before the text (a "vision" model answers)."""

    @classmethod
    def user(cls, text: str, images: Sequence[Image] = ()) -> Turn:
        """A user turn, with the images it shows."""
        return cls(Role.USER, text, images=tuple(images))

    @classmethod
    def assistant(cls, text: str, tool_calls: Sequence[ToolCall] = ()) -> Turn:
        """A model's turn: its text and the tools it called."""
        return cls(Role.ASSISTANT, text, tuple(tool_calls))

    @classmethod
    def tool(cls, call_id: str, content: str) -> Turn:
        """A tool's result for the call `call_id`."""
        return cls(Role.TOOL, content, tool_call_id=call_id)


Prompt = str | Sequence[Turn | tuple[Role | str, str]]
"""A request's conversation: one user turn as a string, or its turns in order, each a `Turn`
or a `(role, content)` pair ("user" or "assistant"; tool results need `Turn.tool`)."""


@dataclass(frozen=True, slots=True)
class Tool:
    """A tool the model may call: `RequestOptions.tools` takes these (or mappings that
    `Tool.from_mapping` reads)."""

    name: str
    """Unique within the request: 1-64 letters, digits, "_" and "-"."""
    description: str = ""
    """What the tool does, for the model."""
    input_schema: Mapping[str, Any] = field(default_factory=_no_input, hash=False)
    """The JSON Schema of the tool's input, an object (default: one with no properties)."""

    @classmethod
    def from_mapping(cls, definition: Mapping[str, Any]) -> Tool:
        """A tool from its JSON definition, in either common shape: fareway's and Anthropic's
        `{"name", "description", "input_schema"}`, or OpenAI's
        `{"type": "function", "function": {"name", "description", "parameters"}}`.

        Raises ValueError saying what is missing, unknown or of the wrong type."""
        if "function" not in definition and "type" not in definition:
            return cls._read(definition, "input_schema", _FIELDS)
        _check_fields(definition, _OPENAI_FIELDS)
        function = definition.get("function")
        if definition.get("type") != "function" or not isinstance(function, Mapping):
            raise ValueError(
                'an OpenAI-style tool is {"type": "function", "function": {"name", '
                '"description", "parameters"}}'
            )
        return cls._read(function, "parameters", _OPENAI_FUNCTION_FIELDS)

    @classmethod
    def _read(cls, definition: Mapping[str, Any], schema_key: str, known: tuple[str, ...]) -> Tool:
        _check_fields(definition, known)
        name = definition.get("name")
        if not isinstance(name, str) or not name:
            raise ValueError('"name" must be a non-empty string')
        description = definition.get("description", "")
        if not isinstance(description, str):
            raise ValueError(f'tool {name}: "description" must be a string')
        schema = definition.get(schema_key, _no_input())
        if not isinstance(schema, Mapping):
            raise ValueError(f'tool {name}: "{schema_key}" must be a JSON Schema object')
        return cls(name, description, schema)


_FIELDS = ("name", "description", "input_schema")
_OPENAI_FIELDS = ("type", "function")
# "strict" is OpenAI's structured-outputs switch; fareway's providers decide it themselves.
_OPENAI_FUNCTION_FIELDS = ("name", "description", "parameters", "strict")


def _check_fields(definition: Mapping[str, Any], known: tuple[str, ...]) -> None:
    """Refuse a definition with fields it would lose (a typo, or a shape mixing the two)."""
    unknown = sorted(str(key) for key in definition if key not in known)
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(unknown)}; expected {', '.join(known)}")


class RequestOptions(TypedDict, total=False):
    """Keyword arguments every request method takes besides the prompt (all optional)."""

    system: str
    """System prompt."""
    max_tokens: int
    """Upper bound on the answer's length (default 1024); capped by the chosen model."""
    strategy: str
    """Routing strategy by name (for example "rules"); default: the tenant's policy."""
    model: str
    """Pin one model by catalog id."""
    tier: str
    """Pin a tier (for example "fast")."""
    step_type: str
    """Agent step type (for example "planning", "final_synthesis")."""
    max_cost_micros: int | None
    """Per-request cost ceiling in micro-USD."""
    latency_target_ms: int | None
    """Time-to-first-token target in milliseconds."""
    required_capabilities: Sequence[str]
    """Capabilities the chosen model must have (for example "tools", "vision")."""
    labels: Mapping[str, str]
    """Free-form labels that routing rules may match on."""
    cascade_mode: CascadeMode | str
    """A cascade's mode for this request ("buffered" or "speculative"); default: the tenant's,
    else the strategy's. Applies only when the request is routed by a cascade."""
    request_id: str
    """Your id for the request; the server makes one when empty and echoes it."""
    tools: Sequence[Tool | Mapping[str, Any]]
    """Tools the model may call (`Tool`s, or definitions `Tool.from_mapping` reads). The request
    then goes only to models with the "tools" capability; their definitions count toward its
    size and cost estimate. A call comes back as a `ToolCall` event (`Completion.tool_calls`)
    with stop reason "tool_use"; answer it with a `Turn.tool` turn in the next request."""
    tool_choice: str
    """"auto" (the model decides; the default), "any" (it must call one of the tools), "none"
    (it must call none), or a tool's name (it must call that one). Needs `tools`."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """One model the router considered."""

    model: str
    tier: str
    score: float
    excluded_reason: str = ""
    """Why it could not be chosen; empty when it was eligible."""

    @property
    def eligible(self) -> bool:
        """True when the model could have been chosen."""
        return not self.excluded_reason


@dataclass(frozen=True, slots=True)
class Decision:
    """Which model answers, and why. The first event of a stream; what `route` returns."""

    model: str
    provider: str
    tier: str
    strategy: str
    reason: str
    """One human-readable sentence."""
    candidates: tuple[Candidate, ...]
    """Every model considered, eligible ones first in preference order."""
    estimated_cost_micros: int
    """Upper-bound cost estimate of the answer."""
    budget_remaining_micros: int | None
    """What the tenant may still spend in its tightest window; None when uncapped."""
    request_id: str
    trace_id: str
    """Hex W3C trace id; empty when the server does not trace."""
    signals: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    """The numbers the strategy decided on (for example "learned.strong_score")."""


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the answer, as the model produced it."""

    text: str


@dataclass(frozen=True, slots=True)
class Escalation:
    """A cascade moved on to a stronger model."""

    from_model: str
    to_model: str
    reason: str
    confidence: float
    discard_previous: bool
    """True when the text received so far belongs to the abandoned answer: drop it."""


@dataclass(frozen=True, slots=True)
class Fallback:
    """An attempt failed before its first token and the next candidate took over."""

    from_model: str
    to_model: str
    error: str


@dataclass(frozen=True, slots=True)
class Hedge:
    """The first token was late, so the request also ran on another model; the first to
    answer won. The other was cancelled, and is billed for what it used."""

    from_model: str
    """The model whose first token was late."""
    to_model: str
    """The model the request was also started on."""
    after_ms: int
    """When the hedge started, in milliseconds after the first attempt did."""
    winner: str
    """The model whose answer you receive (`from_model` or `to_model`)."""


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens and cost of one billed attempt, or of all of them (then `model` is empty)."""

    model: str
    input_tokens: int
    output_tokens: int
    cost_micros: int


@dataclass(frozen=True, slots=True)
class Done:
    """The last event of a successful stream."""

    stop_reason: str
    """Why the model stopped (for example "end_turn", "max_tokens")."""
    total: Usage
    """Usage summed over all attempts."""
    ttft_ms: int
    """Milliseconds from the request's arrival to the first token."""
    signals: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    """What the server learned after the decision went out (for example "cascade.confidence"
    of the accepted answer); same keys as `Decision.signals`."""


StreamEvent = Decision | TextDelta | ToolCall | Escalation | Fallback | Hedge | Usage | Done
"""What `generate` yields: one Decision first, then text and the rest, one Done last."""


@dataclass(frozen=True, slots=True)
class Completion:
    """The whole answer, as `complete` returns it."""

    decision: Decision
    """The routing decision; its `signals` include those the stream's Done carried (the later
    value wins on a shared key)."""
    text: str
    """The answer of the model that finished, without text an escalation discarded."""
    stop_reason: str
    usage: tuple[Usage, ...]
    """One entry per billed attempt."""
    total: Usage
    ttft_ms: int
    escalations: tuple[Escalation, ...] = ()
    fallbacks: tuple[Fallback, ...] = ()
    hedges: tuple[Hedge, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    """The tools the answer called (stop_reason "tool_use")."""

    @property
    def turn(self) -> Turn:
        """The answer as the assistant turn to append to the conversation: its text and its tool
        calls, which the `Turn.tool` results that follow it answer."""
        return Turn.assistant(self.text, self.tool_calls)


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One model of the catalog. Prices are micro-USD per million tokens."""

    id: str
    """Catalog id, as `model=` takes it."""
    provider: str
    tier: str
    input_price_micros_per_mtok: int
    output_price_micros_per_mtok: int
    context_window: int
    capabilities: tuple[str, ...]
    simulated: bool
    """True when the sim provider answers instead of the real one."""
    healthy: bool
    """False while the model's circuit is open."""
    provider_model_id: str = ""
    quality: float = 0.0
    max_output_tokens: int = 0


class Window(StrEnum):
    """The UTC calendar window a budget limit applies to."""

    DAY = "day"
    MONTH = "month"
    TOTAL = "total"


class OnExceed(StrEnum):
    """What happens when a request would pass the hard cap."""

    REJECT = "reject"
    CHEAPEST_ONLY = "cheapest_only"


@dataclass(frozen=True, slots=True)
class BudgetLimit:
    """One cost cap. To `set_budget`, give the first four fields; the rest are read only."""

    window: Window
    cap_micros: int
    soft_fraction: float = 0.0
    """Fraction of the cap above which requests are downgraded; 0 = none."""
    on_exceed: OnExceed = OnExceed.REJECT
    spent_micros: int = 0
    """Settled spend in the current window."""
    reserved_micros: int = 0
    """Held by requests in flight."""
    resets_at: datetime | None = None
    """End of the current window (UTC); None for the total window."""

    @property
    def remaining_micros(self) -> int:
        """What may still be spent in this window."""
        return max(0, self.cap_micros - self.spent_micros - self.reserved_micros)


@dataclass(frozen=True, slots=True)
class Budget:
    """A tenant's limits with the current windows' figures, and its latency target."""

    tenant: str
    limits: tuple[BudgetLimit, ...]
    latency_target_ms: int
    """Time-to-first-token target; 0 = none."""
    latency_attainment: float
    """Share of the tenant's requests that met their latency target (0 to 1)."""
