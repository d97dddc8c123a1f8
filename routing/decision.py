"""A routing decision: the chosen model, the ranked alternatives, why others were left out, and
the plan the engine follows when an attempt fails (`Plan`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from fareway.routing.catalog import ModelSpec
from fareway.routing.request import UNKNOWN_TENANT, RouteRequest, TenantContext


@dataclass(frozen=True)
class AttemptUsage:
    """What one model call used and cost (or, with model "", several calls together)."""

    model: str
    input_tokens: int
    output_tokens: int
    cost_micros: int

    @property
    def used(self) -> bool:
        """Whether the call used any tokens: only then is it billed and shown as a `usage`."""
        return bool(self.input_tokens or self.output_tokens)


def summed(usages: Iterable[AttemptUsage]) -> AttemptUsage:
    """Several calls' usage as one, with model "" (what Done.total reports)."""
    listed = list(usages)
    return AttemptUsage(
        "",
        sum(u.input_tokens for u in listed),
        sum(u.output_tokens for u in listed),
        sum(u.cost_micros for u in listed),
    )


@dataclass(frozen=True)
class Candidate:
    """A model the router considered: its score, or why it could not be chosen."""

    model: ModelSpec
    score: float = 0.0
    excluded_reason: str = ""


class CascadeMode(StrEnum):
    """How a cascade shows answers it may still abandon."""

    BUFFERED = "buffered"
    """No text until an answer is accepted: the caller never sees an abandoned answer."""
    SPECULATIVE = "speculative"
    """Text streams at once; an escalation tells the caller to discard what it got."""


class ConfidenceSource(StrEnum):
    """Where a cascade's confidence in an answer comes from."""

    SELF_ASSESSMENT = "self_assessment"
    """The model ends its answer with `confidence: X` (`providers.assessment`)."""
    LOGPROBS = "logprobs"
    """The geometric mean of the answer's token probabilities, from providers that report
    log-probabilities (OpenAI-compatible servers)."""


@dataclass(frozen=True)
class Cascade:
    """The cascade (F4): judge each answer's confidence; below `threshold`, escalate to the
    next model of `ladder` (stronger models, in order; its length is the most escalations)."""

    ladder: tuple[ModelSpec, ...]
    threshold: float = 0.8
    mode: CascadeMode = CascadeMode.BUFFERED
    source: ConfidenceSource = ConfidenceSource.SELF_ASSESSMENT

    def describe(self) -> str:
        """The ladder in words, for the decision's reason."""
        if not self.ladder:
            return "no stronger model to escalate to"
        steps = ", then ".join(m.id for m in self.ladder)
        return (
            f"below confidence {self.threshold:g} ({self.source.value.replace('_', '-')}) it "
            f"escalates to {steps} ({self.mode.value})"
        )


@dataclass(frozen=True)
class HedgePlan:
    """Hedging (F9): when the first attempt's first token has not come `after_ms` after it
    started, the same request also starts on the first of `models` (fastest first) whose hold
    the budget covers; the first to answer wins."""

    models: tuple[ModelSpec, ...]
    after_ms: int

    @property
    def model(self) -> ModelSpec:
        """The preferred hedge model: the fastest."""
        return self.models[0]


@dataclass(frozen=True)
class Plan:
    """What the engine does beyond the first model, decided once by routing (a plan is data:
    the engine follows it and never asks which strategy made it).

    `fallbacks`: the models to try, in order, when an attempt fails before its first token (at
    most `max_attempts - 1`). `cascade`: the escalation ladder and how to judge answers (None:
    the first answer stands). `hedge`: the models a late first token may be hedged on (None: no
    hedging). Routing plans no hedge beside a cascade: a cascade's answers are judged before
    they count, so the first token to arrive does not decide which answer is kept.
    """

    fallbacks: tuple[ModelSpec, ...] = ()
    cascade: Cascade | None = None
    hedge: HedgePlan | None = None

    @classmethod
    def fallback_order(cls, ranked: Sequence[Candidate], max_attempts: int) -> Plan:
        """The plan of a ranking: the candidates after the first, up to `max_attempts - 1`."""
        return cls(fallbacks=tuple(c.model for c in ranked[1:max_attempts]))

    def reranked(self, ranked: Sequence[Candidate]) -> Plan:
        """This plan for a decision re-ranked after routing (the budget's downgrade or its
        cheapest-only rule): as many fallbacks as before, taken from the new order after its
        first model. The plan never names a model the new order left out or puts first: the
        ladder keeps its steps still ranked and stronger than the new first model (after it,
        when the new first model is a step itself), and the hedge keeps its models that are still
        ranked and not first (it goes when none is)."""
        first = ranked[0].model if ranked else None
        others = [c.model for c in ranked[1:]]
        cascade = self.cascade
        if cascade is not None:
            ladder = cascade.ladder
            if first in ladder:
                ladder = ladder[ladder.index(first) + 1 :]
            cascade = replace(cascade, ladder=tuple(m for m in ladder if m in others))
        hedge = self.hedge
        if hedge is not None:
            kept = tuple(m for m in hedge.models if m in others)
            hedge = replace(hedge, models=kept) if kept else None
        return replace(
            self,
            fallbacks=tuple(others[: len(self.fallbacks)]),
            cascade=cascade,
            hedge=hedge,
        )


@dataclass(frozen=True)
class Decision:
    """What the router decided for one request.

    `ranked` holds the eligible models, preferred first: `ranked[0]` answers. `excluded` holds
    the others with their reasons. `plan` says what to do when an attempt fails; whoever
    re-ranks a decision rebuilds it (`Plan.reranked`), so the two always agree.
    """

    request: RouteRequest
    strategy: str
    reason: str
    ranked: tuple[Candidate, ...]
    excluded: tuple[Candidate, ...]
    prompt_tokens: int
    signals: Mapping[str, float] = field(default_factory=dict)
    plan: Plan = field(default_factory=Plan)
    spent: tuple[AttemptUsage, ...] = ()
    """What routing itself spent on model calls (a classifier's), already billed."""
    tenant: TenantContext = UNKNOWN_TENANT
    """The tenant's budget and latency target as routing saw them."""

    @property
    def latency_target_ms(self) -> int:
        """The time-to-first-token target: the request's own, else the tenant's; 0 for none."""
        return self.tenant.target_for(self.request)

    @property
    def model(self) -> ModelSpec:
        """The chosen model."""
        return self.ranked[0].model

    def max_tokens_for(self, model: ModelSpec) -> int:
        """The request's max_tokens, capped by what this model accepts."""
        return min(self.request.max_tokens, model.max_output_tokens)

    def estimated_cost_micros(self, model: ModelSpec) -> int:
        """An upper bound of what this request costs on this model."""
        return estimate_cost_micros(model, self.prompt_tokens, self.request.max_tokens)


def estimate_cost_micros(model: ModelSpec, prompt_tokens: int, max_tokens: int) -> int:
    """The one cost estimate, used for routing and for budget reservations alike: the prompt
    estimate at the input price plus every allowed output token at the output price."""
    return model.price.cost_micros(prompt_tokens, min(max_tokens, model.max_output_tokens))
