"""What the engine tells the servicer, as plain frozen dataclasses (no protobuf here).

A request's stream is `Routed`, then the answer's events (`Delta`, `ToolCalled`,
`FallbackTaken`, `Billed`,
and from the later policies `Escalated` and `Hedged`), then `Finished`. The servicer encodes
each kind exhaustively (`router_service.encode_event`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from fareway.core.content import ToolCall
from fareway.routing.decision import AttemptUsage, Decision


@dataclass(frozen=True)
class Routed:
    """The decision, with what the tenant may still spend once this request's hold is taken."""

    decision: Decision
    budget_remaining_micros: int | None


@dataclass(frozen=True)
class Delta:
    """Answer text."""

    text: str


@dataclass(frozen=True)
class ToolCalled:
    """The model called a tool: one complete call, arguments assembled."""

    call: ToolCall


@dataclass(frozen=True)
class FallbackTaken:
    """An attempt failed before its first token; the next candidate takes over."""

    from_model: str
    to_model: str
    error: str


@dataclass(frozen=True)
class Escalated:
    """A cascade found an answer not good enough and moved on to a stronger model."""

    from_model: str
    to_model: str
    reason: str
    confidence: float
    """The confidence that was below the threshold."""
    discard_previous: bool
    """True when the text already sent belongs to the abandoned answer."""


@dataclass(frozen=True)
class Hedged:
    """The first token was late, so the request also ran on another model; `winner` answers,
    the other was cancelled (and is billed for what it used)."""

    from_model: str
    to_model: str
    after_ms: int
    """When the hedge started, in milliseconds after the first attempt did."""
    winner: str


@dataclass(frozen=True)
class Billed:
    """One attempt's usage, charged to the tenant."""

    usage: AttemptUsage


@dataclass(frozen=True)
class Finished:
    """The answer is complete."""

    stop_reason: str
    total: AttemptUsage
    ttft_ms: int
    signals: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    """What the engine learned after the decision went out (e.g. "cascade.confidence")."""
    reason: str = ""
    """Why this answer stands where the plan said otherwise ("" when it was followed)."""


GenerationEvent = (
    Routed | Delta | ToolCalled | Escalated | FallbackTaken | Hedged | Billed | Finished
)
