"""The cascade policy (F4): a cheap model answers first; an answer whose confidence is below the
threshold is set aside for the next model up the plan's ladder.

- Confidence comes from the plan's source: the model's own self-assessment tail (stripped by
  `providers.assessment.AssessmentParser` before the caller sees it), or the geometric mean of
  its token probabilities where the provider reports log-probabilities. None (a missing or
  unreadable tail, no log-probabilities) is low confidence: it escalates.
- An answer that calls tools is judged by its calls alone (`judge_answer`): it stands when
  every call names one of the request's tools and its arguments validate against that tool's
  input schema, and escalates, with a reason naming the tool and the validation error, when one does
  not. Its confidence is not read: a call is an action, not text a model can rate, and a call
  that validates is as good as a cheap model's call gets. On the wire its confidence is 1
  when it stands and 0 when it escalates.
- `Answer` carries one attempt's answer (text and tool calls, in order) to the caller.
  Buffered: nothing goes out until the answer is accepted (`release`). Speculative: it goes
  out at once, holding back only text that could be the start of the tail; an escalation
  tells the caller to discard it, tool calls included (`discard`), and should the answer
  stand after all (its successors failed, or could not be afforded), `release` sends it
  again in full.
- `Ladder` walks the plan's stronger models, skipping any the request already tried (a fallback
  may have landed on one) and those the budget cannot cover: the engine holds each step's cost
  before it escalates, and when it cannot, the last answer stands and the reason says so.

The engine runs the attempts and sends the events; this module decides and shapes text.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from jsonschema import validators
from jsonschema.exceptions import best_match
from referencing.exceptions import Unresolvable

from fareway.core.content import Tool, ToolCall
from fareway.providers.assessment import AssessmentParser
from fareway.routing.catalog import ModelSpec
from fareway.routing.decision import Cascade, CascadeMode, ConfidenceSource
from fareway.server.engine.attempt import AttemptResult, Output, Send
from fareway.server.engine.events import Delta
from fareway.server.engine.fallback import Afford

SIGNAL = "cascade.confidence"
"""The Done signal that reports the accepted answer's confidence."""


class Answer:
    """One cascade attempt's answer (text and tool calls) on its way to the caller (see the
    module docstring)."""

    def __init__(self, cascade: Cascade, send: Send) -> None:
        self._send = send
        self._buffered = cascade.mode is CascadeMode.BUFFERED
        self._source = cascade.source
        self._parser = (
            AssessmentParser() if cascade.source is ConfidenceSource.SELF_ASSESSMENT else None
        )
        self._shown: list[Output] = []  # what the caller may see: the tail stripped
        self._sent = 0  # how many of those pieces the caller holds

    @property
    def streamed(self) -> bool:
        """Whether the caller holds part of this answer (text or a tool call)."""
        return self._sent > 0

    async def send(self, piece: Output) -> None:
        """Take the next piece of the attempt's answer (the attempt's `send`). A tool call is
        held or sent like text; only text passes the self-assessment parser (the tail is text
        at the end of the answer)."""
        if isinstance(piece, Delta) and self._parser is not None:
            text = self._parser.feed(piece.text)
            if not text:
                return
            piece = Delta(text)
        elif isinstance(piece, Delta) and not piece.text:
            return
        self._shown.append(piece)
        if not self._buffered:
            await self._flush()

    def confidence(self, result: AttemptResult) -> float | None:
        """The finished answer's confidence (None: it gave none); call once, at its end."""
        if self._parser is None:
            mean = result.mean_logprob
            return math.exp(mean) if mean is not None else None
        tail = self._parser.finish()
        if tail.rest:
            self._shown.append(Delta(tail.rest))
        return tail.confidence

    def discard(self) -> None:
        """The caller was told to drop what it holds of this answer."""
        self._sent = 0

    async def release(self) -> None:
        """The answer stands: send the caller whatever of it the caller does not hold."""
        await self._flush()

    async def _flush(self) -> None:
        while self._sent < len(self._shown):
            piece = self._shown[self._sent]
            self._sent += 1
            await self._send(piece)


@dataclass(frozen=True)
class Judged:
    """A complete cascade answer and what it was judged to be worth: its confidence, or for an
    answer that called tools, what is wrong with its calls (`invalid`, "" when nothing)."""

    result: AttemptResult
    answer: Answer
    confidence: float | None
    invalid: str = ""

    @property
    def called(self) -> bool:
        """The answer called tools, so its calls decide, not a confidence."""
        return bool(self.result.tool_calls)

    def accepted(self, threshold: float) -> bool:
        """Good enough to stand: valid calls, or confident enough (a missing confidence never
        is)."""
        if self.called:
            return not self.invalid
        return self.confidence is not None and self.confidence >= threshold

    def gated(self) -> float:
        """The confidence as reported on the wire: a missing one counts as 0, and an answer that
        called tools has 1 when its calls are valid, 0 when not."""
        if self.called:
            return 0.0 if self.invalid else 1.0
        return self.confidence if self.confidence is not None else 0.0


def judge_answer(answer: Answer, result: AttemptResult, tools: Sequence[Tool]) -> Judged:
    """Judge a complete answer once, at its end: by its tool calls when it made any, else by its
    confidence (see the module docstring)."""
    confidence = answer.confidence(result)  # also strips the tail from what the caller sees
    if not result.tool_calls:
        return Judged(result, answer, confidence)
    problems = (call_problem(call, tools) for call in result.tool_calls)
    return Judged(result, answer, None, next((p for p in problems if p), ""))


def call_problem(call: ToolCall, tools: Sequence[Tool]) -> str:
    """What is wrong with a tool call: a tool the request does not offer, or arguments that do
    not validate against its input schema; "" when nothing is. A schema whose `$ref` fareway
    cannot resolve is the caller's to fix, not the model's fault: the call is not held
    against it."""
    tool = next((t for t in tools if t.name == call.name), None)
    if tool is None:
        return f"the call of tool '{call.name}' names no tool of the request"
    try:
        arguments = call.arguments()
    except ValueError as bad:  # providers assemble JSON, but a cascade does not assume it
        return f"the call of tool '{call.name}' has arguments that are not JSON ({bad})"
    schema = dict(tool.input_schema)
    try:
        found = best_match(validators.validator_for(schema)(schema).iter_errors(arguments))
    except Unresolvable:
        return ""
    if found is None:
        return ""
    return f"the call of tool '{call.name}' does not validate at {found.json_path}: {found.message}"


def escalation_reason(judged: Judged, threshold: float) -> str:
    """Why an answer was set aside, for the escalation event."""
    if judged.called:
        return judged.invalid
    if judged.confidence is None:
        return "the answer gave no readable confidence"
    return f"confidence {judged.confidence:.2f} is below the threshold {threshold:g}"


class Ladder:
    """One request's walk up its cascade's stronger models."""

    def __init__(self, cascade: Cascade, tried: Collection[str]) -> None:
        self._left = [m for m in cascade.ladder if m.id not in tried]
        self.unaffordable: ModelSpec | None = None
        """The first step the budget could not cover, once one could not."""

    def __bool__(self) -> bool:
        return bool(self._left)

    async def next_model(self, afford: Afford) -> ModelSpec | None:
        """The next step up, its cost held; None when none is left or the budget cannot cover
        the next one (then `unaffordable` names it and the walk ends)."""
        if not self._left:
            return None
        model = self._left.pop(0)
        if await afford(model):
            return model
        self.unaffordable = model
        self._left.clear()
        return None
