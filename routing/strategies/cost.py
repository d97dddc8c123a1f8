"""Cost-aware selection (F5): the best-quality model whose estimated cost fits the ceiling.

The ceiling is the request's `hints.max_cost_micros` (else this strategy's configured default)
or the tenant's remaining budget, whichever is lower. Models that fit lead, best quality first;
the others follow, cheapest first, so every eligible model is ranked and the tail is the
fallback order. This strategy refuses nothing: a caller's `max_cost_micros` is a constraint the
router enforces for every strategy (a request nothing fits is refused there, naming the
cheapest estimate), and a tenant that cannot pay is refused by the budget policy, with the
same error and retry time whatever the strategy. When nothing fits the ceiling, the cheapest
model leads and the reason says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from fareway.routing.catalog import ModelSpec
from fareway.routing.decision import estimate_cost_micros
from fareway.routing.features import Features
from fareway.routing.request import UNKNOWN_TENANT, RouteRequest, TenantContext
from fareway.routing.strategy import AcceptsAnyHints, Problem, Ranking, Scored, StrategyContext


class CostConfig(BaseModel):
    """The `type: cost` entry of `strategies`."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["cost"]
    # Applies when a request sets no max_cost_micros; None means no ceiling of its own.
    default_max_cost_micros: int | None = Field(None, gt=0)

    def build(self, name: str, context: StrategyContext) -> CostStrategy:
        """The strategy this configuration describes."""
        return CostStrategy(self.default_max_cost_micros, name)

    def problems(self, tiers: Sequence[str], models: Sequence[str]) -> list[Problem]:
        """Nothing here refers to tiers or models."""
        return []


class CostStrategy(AcceptsAnyHints):
    """Highest quality first among the models that fit, cheaper first between equals; then
    the rest, cheapest first."""

    def __init__(self, default_max_cost_micros: int | None, name: str = "cost") -> None:
        self.name = name
        self._default_ceiling = default_max_cost_micros

    async def rank(
        self,
        request: RouteRequest,
        features: Features,
        eligible: Sequence[ModelSpec],
        tenant: TenantContext = UNKNOWN_TENANT,
    ) -> Ranking:
        ceiling = _tightest(
            request.hints.max_cost_micros or self._default_ceiling, tenant.budget_remaining_micros
        )
        costs = {
            m.id: estimate_cost_micros(m, features.prompt_tokens, request.max_tokens)
            for m in eligible
        }
        fitting = [m for m in eligible if ceiling is None or costs[m.id] <= ceiling]
        over = sorted((m for m in eligible if m not in fitting), key=lambda m: costs[m.id])
        ranked = sorted(fitting, key=lambda m: (-m.quality, costs[m.id])) + over
        best = ranked[0]
        limit = f"the ceiling of {ceiling} micro-USD" if ceiling is not None else "no ceiling"
        if fitting:
            reason = (
                f"{best.id} is the best-quality model whose estimated cost "
                f"({costs[best.id]} micro-USD) fits {limit}"
            )
        else:
            reason = (
                f"no model fits {limit}; the cheapest, {best.id}, is estimated at "
                f"{costs[best.id]} micro-USD"
            )
        signals = {"cost.estimated_micros": float(costs[best.id])}
        if ceiling is not None:
            signals["cost.ceiling_micros"] = float(ceiling)
        # Scores fall along the ranking; those that fit score above those that do not.
        count = len(ranked)
        return Ranking(
            [Scored(m, (count - i) / count) for i, m in enumerate(ranked)], reason, signals
        )


def _tightest(*ceilings: int | None) -> int | None:
    present = [c for c in ceilings if c is not None]
    return min(present) if present else None
