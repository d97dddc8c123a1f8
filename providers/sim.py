"""The simulated provider (F12): deterministic answers with configurable speed, self-assessed
confidence and failures.

The same request to the same model always produces the same text, token count, stop reason,
confidence and failure, so demos, tests and benchmarks are repeatable without a network or an
API key. Everything an answer will do is decided up front, as a `SimPlan`, from seeded draws on
the model and the caller's prompt (the system prompt without the self-assessment instruction), so
asking for a self-assessment changes neither the answer's words nor whether the prompt fails:

- confidence: uniform in `mean ± spread`, clipped to [0, 1], two decimals; written as the
  answer's tail (`providers.assessment`) when the call has `self_assessment`.
- failure: a prompt fails when its draw is below `rate`, so a fraction of prompts fail, the same
  ones every time, and a higher rate only adds prompts. Before the first token (`after_tokens:
  0`) the error comes at once, with no event before it, as an HTTP error would; after N text
  chunks it breaks the stream. A `timeout` first waits out the call's `timeout_s`.
- stall: a drawn fraction of prompts waits `seconds` more before the first token (for hedging).

Waits honour the call's `timeout_s` as a real provider's read timeout does: a wait longer than
it ends, after `timeout_s`, in ProviderTimeout.

Tools, so that an agent loop runs against the embedded default without a key:

- a call answers with one tool call instead of text when it offers tools, its last turn is a
  user turn (not a tool result), tool_choice is not NONE, and either tool_choice is ANY or TOOL
  or the user's text names a tool (case-insensitive, a whole word). The tool is the one
  tool_choice names, else the first offered that the text names, else the first offered. Its
  arguments fill each required property of the input schema (every property when none is
  required) from the last user turn: a string (or a property of no type) gets the turn's text,
  stripped; a number or integer the first number in it (0 when there is none); a boolean
  false; an array, object or null an empty one. The
  call's id is "call_" and a hash of the prompt, so the same prompt gets the same id. The stop
  reason is "tool_use", and the output tokens are estimated from the call's text.
- a call whose last turns are tool results answers text that starts with their content ("The
  result is 42." followed by the usual words), so an agent's final answer shows what its tools
  returned.

Everything else, including every answer to a call without tools, is as it was before tools.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

from fareway.core.clock import Clock
from fareway.core.content import Role, Tool, ToolCall, ToolChoice, ToolChoiceMode
from fareway.core.errors import (
    Overloaded,
    ProviderError,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnreachable,
    RateLimited,
)
from fareway.providers.assessment import format_assessment, without_instruction
from fareway.providers.base import (
    Finish,
    ProviderCall,
    ProviderEvent,
    TextChunk,
    ToolUse,
    UsageReport,
)
from fareway.routing.tokens import estimate_request_tokens, estimate_tokens

_SOURCE_TEXT = (
    "the router weighs each request against cost and latency and picks a model that can "
    "answer it well so simple questions stay cheap while hard ones reach a stronger model "
    "budgets hold under load and every decision is traced for later review"
)
_WORDS = tuple(_SOURCE_TEXT.split())
# How the tail is cut into tokens: "\nconfidence", ":", " 0", ".", "85".
_TAIL_TOKENS = re.compile(r"\s*\w+|\s*[^\w\s]")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")

FailureKind = Literal["rate_limited", "overloaded", "timeout", "connection_error", "rejected"]
_ERRORS: tuple[type[ProviderError], ...] = (
    RateLimited,
    Overloaded,
    ProviderTimeout,
    ProviderUnreachable,
    ProviderRejected,
)


@dataclass(frozen=True)
class SimConfidence:
    """The model's self-assessed confidence: uniform in `mean ± spread`, clipped to [0, 1]."""

    mean: float = 0.85
    spread: float = 0.1


@dataclass(frozen=True)
class SimFailure:
    """A `rate` fraction of prompts fail with `kind`, after `after_tokens` text chunks (0:
    before the first). `retry_after_s` is carried on the error, as a Retry-After header."""

    kind: FailureKind
    rate: float = 1.0
    after_tokens: int = 0
    retry_after_s: float | None = None


@dataclass(frozen=True)
class SimStall:
    """A `rate` fraction of prompts waits `seconds` more before the first token."""

    seconds: float
    rate: float = 1.0


@dataclass(frozen=True)
class SimProfile:
    """How a simulated model behaves: time to first token, speed, typical answer length,
    confidence, and (off by default) failures and stalls."""

    ttft_ms: int = 0
    tokens_per_second: float = 0.0  # 0: no pacing, every token at once
    answer_tokens: int = 60
    confidence: SimConfidence = SimConfidence()
    fail: SimFailure | None = None
    stall: SimStall | None = None


@dataclass(frozen=True)
class SimPlan:
    """What one simulated call will do. `pieces` are the text chunks (the answer's words, then
    the tail when asked for), already cut at max_tokens; `fail_after` is how many of them are
    sent before `failure` is raised (None: no failure); `wait_s` comes before the first and
    `gap_s` after each. `tool_call` is the answer when it calls a tool (then there is no text)."""

    pieces: tuple[str, ...]
    stop_reason: str
    confidence: float
    wait_s: float
    gap_s: float
    failure: SimFailure | None
    fail_after: int | None
    tool_call: ToolCall | None = None

    @property
    def output_tokens(self) -> int:
        """What the answer costs in output tokens: a token a piece, and the call's text."""
        call = self.tool_call
        return len(self.pieces) + (estimate_tokens(call.name + call.arguments_json) if call else 0)


class SimProvider:
    """Answers from a seeded word list, paced by the injected clock."""

    name = "sim"
    genai_name = "fareway.sim"  # not a real provider, so a name in fareway's own namespace
    simulated = True
    server_address = ""  # answers in-process

    def __init__(self, clock: Clock, profiles: Mapping[str, SimProfile] | None = None) -> None:
        self._clock = clock
        self._profiles = dict(profiles or {})

    def plan(self, call: ProviderCall) -> SimPlan:
        """Everything this call will do, decided from the model and the caller's prompt."""
        model_id = call.model.id
        profile = self._profiles.get(model_id, SimProfile())
        prompt = (without_instruction(call.system), *(m.readable() for m in call.messages))
        # The answer's draws come first, in the order they always had, so that answers stay
        # the same as before confidence and failures existed.
        rng = random.Random(_seed(model_id, prompt))
        length = max(1, int(profile.answer_tokens * rng.uniform(0.75, 1.25)))
        words = [rng.choice(_WORDS) for _ in range(length)]
        lead = _results_sentence(call)
        pieces = [*lead, (" " if lead else "") + words[0], *(" " + word for word in words[1:])]
        confidence = _confidence(profile.confidence, _draw("confidence", model_id, prompt))
        tool_call = _tool_call(call, prompt)
        if tool_call is not None:  # the answer is the call: no words, no self-assessment
            pieces, stop_reason = [], "tool_use"
        else:
            if call.self_assessment:
                pieces += _TAIL_TOKENS.findall(format_assessment(confidence))
            stop_reason = "end_turn" if len(pieces) <= call.max_tokens else "max_tokens"
            pieces = pieces[: call.max_tokens]

        stall = profile.stall
        stalls = stall is not None and _draw("stall", model_id, prompt) < stall.rate
        wait_s = profile.ttft_ms / 1000 + (stall.seconds if stall and stalls else 0.0)
        gap_s = 1 / profile.tokens_per_second if profile.tokens_per_second > 0 else 0.0
        failure = profile.fail
        if failure is not None and _draw("fail", model_id, prompt) >= failure.rate:
            failure = None
        fail_after = None if failure is None else min(failure.after_tokens, len(pieces))
        return SimPlan(
            tuple(pieces), stop_reason, confidence, wait_s, gap_s, failure, fail_after, tool_call
        )

    async def stream(self, call: ProviderCall) -> AsyncGenerator[ProviderEvent, None]:
        """Yield the planned answer: usage first, then one token a chunk (or the tool call),
        usage, Finish; or raise the planned failure."""
        plan = self.plan(call)
        if plan.failure is not None and plan.fail_after == 0:
            # Refused before the stream opens, as an HTTP error is: no event at all.
            await self._fail(plan.failure, call)
        input_tokens = estimate_request_tokens(call.system, call.messages, call.tools)
        yield UsageReport(input_tokens, 0)
        await self._wait(plan.wait_s, call)
        for sent, piece in enumerate(plan.pieces):
            if plan.failure is not None and sent == plan.fail_after:
                await self._fail(plan.failure, call)
            yield TextChunk(piece)
            if plan.gap_s:
                await self._wait(plan.gap_s, call)
        if plan.tool_call is not None:
            yield ToolUse(plan.tool_call)
        if plan.failure is not None:  # it was to fail after more chunks than the answer has
            await self._fail(plan.failure, call)
        yield UsageReport(input_tokens, plan.output_tokens)
        yield Finish(plan.stop_reason)

    async def aclose(self) -> None:
        """Nothing to release."""

    async def _wait(self, seconds: float, call: ProviderCall) -> None:
        """Sleep on the clock; past the call's timeout, time out as a real read would."""
        if call.timeout_s is not None and seconds > call.timeout_s:
            await self._clock.sleep(call.timeout_s)
            raise ProviderTimeout(
                f"simulated: no token within {call.timeout_s}s", model=call.model.id
            )
        await self._clock.sleep(seconds)

    async def _fail(self, failure: SimFailure, call: ProviderCall) -> NoReturn:
        """Raise the configured failure (a timeout after waiting out the call's timeout)."""
        error = _error_class(failure.kind)
        if error is ProviderTimeout and call.timeout_s is not None:
            await self._clock.sleep(call.timeout_s)
        retry_after_s = failure.retry_after_s if error in (RateLimited, Overloaded) else None
        raise error(
            f"simulated {failure.kind} ({call.model.id})",
            model=call.model.id,
            retry_after_s=retry_after_s,
        )


def _results_sentence(call: ProviderCall) -> list[str]:
    """The pieces of "The result is X." for the tool results the conversation ends with (none
    when it ends with a user turn)."""
    contents: list[str] = []
    for message in reversed(call.messages):
        result = message.tool_result
        if result is None:
            break
        contents.insert(0, result.content)
    if not contents:
        return []
    opening = "The result is" if len(contents) == 1 else "The results are"
    sentence = f"{opening} {', '.join(contents)}."
    words = sentence.split()
    return [words[0], *(" " + word for word in words[1:])]


def _tool_call(call: ProviderCall, prompt: tuple[str, ...]) -> ToolCall | None:
    """The tool call this call answers with, by the rule in the module's docstring; None when
    it answers text."""
    last = call.messages[-1] if call.messages else None
    choice = call.tool_choice or ToolChoice()
    if not call.tools or last is None or last.role is not Role.USER:
        return None
    if choice.mode is ToolChoiceMode.NONE:
        return None
    text = last.text
    chosen = [t for t in call.tools if choice.mode is ToolChoiceMode.TOOL and t.name == choice.name]
    named = [t for t in call.tools if _names(text, t.name)]
    if not (chosen or named or choice.mode is ToolChoiceMode.ANY):
        return None
    tool = [*chosen, *named, call.tools[0]][0]
    arguments = json.dumps(_arguments(tool, text))
    return ToolCall(f"call_{_seed('tool_call', prompt):016x}", tool.name, arguments)


def _names(text: str, name: str) -> bool:
    """Whether `text` names the tool: its name as a whole word, in any case."""
    return re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text, re.IGNORECASE) is not None


def _arguments(tool: Tool, text: str) -> dict[str, Any]:
    """A value from `text` for each required property (each property when none is)."""
    properties = tool.input_schema.get("properties")
    properties = properties if isinstance(properties, dict) else {}
    required = tool.input_schema.get("required")
    names = [n for n in required if isinstance(n, str)] if isinstance(required, list) else []
    return {name: _value(properties.get(name), text) for name in names or properties}


def _value(schema: Any, text: str) -> Any:
    """The value of one property, by its schema's type (the first, when it lists several)."""
    kind = schema.get("type") if isinstance(schema, dict) else None
    if isinstance(kind, list):
        kind = kind[0] if kind else None
    if kind in ("number", "integer"):
        found = _NUMBER.search(text)
        number = float(found.group()) if found else 0.0
        return int(number) if kind == "integer" or number.is_integer() else number
    empty: dict[Any, Any] = {"boolean": False, "array": [], "object": {}, "null": None}
    return empty[kind] if isinstance(kind, str) and kind in empty else text.strip()


def _error_class(kind: FailureKind) -> type[ProviderError]:
    """The ProviderError subclass whose `kind` this is."""
    return next(error for error in _ERRORS if error.kind == kind)


def _confidence(profile: SimConfidence, draw: float) -> float:
    """`draw` in [0, 1) mapped onto mean ± spread, clipped to [0, 1], rounded to the two
    decimals the tail carries (so that parsing the tail gives this value back)."""
    value = profile.mean + profile.spread * (2 * draw - 1)
    return round(min(1.0, max(0.0, value)), 2)


def _draw(label: str, model_id: str, prompt: tuple[str, ...]) -> float:
    """A number in [0, 1) fixed by the label, model and prompt, independent across labels."""
    return _seed(f"{label}\x01{model_id}", prompt) / 2**64


def _seed(model_id: str, prompt: tuple[str, ...]) -> int:
    digest = hashlib.sha256("\x00".join((model_id, *prompt)).encode()).digest()
    return int.from_bytes(digest[:8], "big")
