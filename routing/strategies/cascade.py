"""Cascade routing (F4): the cheapest eligible tier answers first; an answer whose confidence is
below the threshold escalates to the next stronger tier's best model.

This strategy only ranks and draws the ladder: the ranking is every eligible model cheapest tier
first (within a tier by estimated cost, then quality), so its tail doubles as the fallback
order; the ladder is, for each eligible tier above the first model's, that tier's best-quality
model, at most `max_escalations` of them. The router puts the ladder on the decision's plan
(`routing.decision.Cascade`), after the tenant's and the request's overrides of the threshold
and mode; the engine judges the answers and escalates. A tier with no eligible model (excluded
by constraints, the tenant, an open circuit or a latency target) is skipped, not waited for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from fareway.routing.catalog import Catalog, ModelSpec
from fareway.routing.decision import Cascade, CascadeMode, ConfidenceSource, estimate_cost_micros
from fareway.routing.features import Features
from fareway.routing.request import UNKNOWN_TENANT, RouteRequest, TenantContext
from fareway.routing.strategy import AcceptsAnyHints, Problem, Ranking, Scored, StrategyContext


class CascadeConfig(BaseModel):
    """The `type: cascade` entry of `strategies`."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["cascade"]
    # An answer whose confidence is below this escalates (0: never; 1: always, but for a 1).
    threshold: float = Field(0.8, ge=0, le=1)
    # The most stronger models a request may move on to (0: judge answers, never escalate).
    max_escalations: int = Field(2, ge=0)
    # buffered: no text until an answer is accepted; speculative: stream at once, and on
    # escalation tell the caller to discard what it got.
    mode: CascadeMode = CascadeMode.BUFFERED
    # self_assessment: the model states its confidence; logprobs: from token probabilities.
    confidence: ConfidenceSource = ConfidenceSource.SELF_ASSESSMENT

    def build(self, name: str, context: StrategyContext) -> CascadeStrategy:
        """The strategy this configuration describes."""
        cascade = Cascade((), self.threshold, self.mode, self.confidence)
        return CascadeStrategy(context.catalog, cascade, self.max_escalations, name)

    def problems(self, tiers: Sequence[str], models: Sequence[str]) -> list[Problem]:
        """Nothing here refers to tiers or models."""
        return []


class CascadeStrategy(AcceptsAnyHints):
    """Cheapest tier first, with a ladder of stronger tiers' best models on the ranking. It
    checks no hints itself: the router checks hints.cascade_mode, which applies to whichever
    cascade a plan carries."""

    def __init__(
        self, catalog: Catalog, template: Cascade, max_escalations: int, name: str = "cascade"
    ) -> None:
        """`template` carries the threshold, mode and confidence source; its ladder is drawn
        for each request."""
        self.name = name
        self._catalog = catalog
        self._template = template
        self._max_escalations = max_escalations

    async def rank(
        self,
        request: RouteRequest,
        features: Features,
        eligible: Sequence[ModelSpec],
        tenant: TenantContext = UNKNOWN_TENANT,
    ) -> Ranking:
        tier_rank = self._catalog.tier_rank
        costs = {
            m.id: estimate_cost_micros(m, features.prompt_tokens, request.max_tokens)
            for m in eligible
        }
        ranked = sorted(eligible, key=lambda m: (tier_rank(m.tier), costs[m.id], -m.quality))
        first = ranked[0]
        base = tier_rank(first.tier)
        stronger = sorted({tier_rank(m.tier) for m in ranked} - {base})
        ladder: list[ModelSpec] = []
        for rank in stronger[: self._max_escalations]:  # only tiers with an eligible model
            in_tier = [m for m in ranked if tier_rank(m.tier) == rank]
            ladder.append(max(in_tier, key=lambda m: (m.quality, -costs[m.id])))
        cascade = Cascade(
            tuple(ladder), self._template.threshold, self._template.mode, self._template.source
        )
        reason = f"the cheapest eligible tier answers first: {first.id} ({first.tier})"
        return Ranking(
            [Scored(m, 1.0 / (1 + tier_rank(m.tier) - base)) for m in ranked],
            reason,
            cascade=cascade,
        )
