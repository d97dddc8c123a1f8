"""The strategy plug-in point: request features in, ranked candidates with a reason out.

A strategy sees only models that passed the constraints, and only ranks them; the router
chooses, explains exclusions and prices the result. One file per strategy under
`routing/strategies/`, found through the registry in `routing/strategies/__init__.py`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from fareway.routing.catalog import Catalog, ModelSpec
from fareway.routing.features import Features
from fareway.routing.request import RouteRequest


@dataclass(frozen=True)
class Scored:
    """A model and the strategy's score for it (higher is preferred)."""

    model: ModelSpec
    score: float


@dataclass(frozen=True)
class Ranking:
    """A strategy's answer: every eligible model, most preferred first, and why."""

    ranked: Sequence[Scored]
    reason: str
    signals: Mapping[str, float] = field(default_factory=dict)


class Strategy(Protocol):
    """Ranks the eligible models for one request."""

    name: str

    async def rank(
        self, request: RouteRequest, features: Features, eligible: Sequence[ModelSpec]
    ) -> Ranking:
        """Order `eligible` (never empty) by preference and say why the first one leads."""
        ...


def rank_towards_tier(catalog: Catalog, target: str, eligible: Sequence[ModelSpec]) -> list[Scored]:
    """Order models by closeness to a target tier: the tier itself, then stronger tiers, then
    weaker ones; within a tier, higher quality first. Scores fall with tier distance, so the
    tail doubles as the fallback order."""
    target_rank = catalog.tier_rank(target)

    def key(model: ModelSpec) -> tuple[int, int, float]:
        distance = catalog.tier_rank(model.tier) - target_rank
        return (abs(distance), 0 if distance >= 0 else 1, -model.quality)

    return [
        Scored(m, 1.0 / (1 + abs(catalog.tier_rank(m.tier) - target_rank)))
        for m in sorted(eligible, key=key)
    ]
