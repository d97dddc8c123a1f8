"""What the client hands back and takes in: frozen dataclasses, no protobuf.

Money is an integer number of micro-USD (1 USD = 1,000,000), as on the wire; token counts and
durations are integers too. `StreamEvent` is the union `Client.generate` yields.
"""

from __future__ import annotations

import json
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


class CascadeMode(StrEnum):
    """How a cascade (the `cascade` strategy) shows answers it may still abandon."""

    BUFFERED = "buffered"
    """No text until an answer is accepted: you never see an abandoned answer."""
    SPECULATIVE = "speculative"
    """Text streams at once; an `Escalation` with `discard_previous` says to drop it."""


Prompt = str | Sequence[tuple[Role | str, str]]
"""A request's conversation: one user turn as a string, or (role, content) pairs in order."""


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
class ToolCall:
    """The model called a tool; answer it with a ("tool", result) turn naming `id`."""

    id: str
    name: str
    arguments_json: str
    """The arguments as one complete JSON object."""

    def arguments(self) -> Any:
        """The arguments, parsed."""
        return json.loads(self.arguments_json)


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
