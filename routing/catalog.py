"""The model catalog (F1): which models exist, their tiers, prices, limits and capabilities."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from fareway.budgets.pricing import Price


@dataclass(frozen=True)
class ModelSpec:
    """One model that fareway may route to."""

    id: str
    provider: str
    provider_model_id: str
    tier: str
    price: Price
    context_window: int
    max_output_tokens: int
    capabilities: frozenset[str]
    quality: float


class Catalog:
    """The configured models, ordered cheapest tier first, and the tier order itself."""

    def __init__(self, models: Iterable[ModelSpec], tiers: Sequence[str]) -> None:
        self.tiers: tuple[str, ...] = tuple(tiers)
        self._rank = {tier: i for i, tier in enumerate(self.tiers)}
        models = tuple(models)
        if not models:
            raise ValueError("a catalog needs at least one model")
        unknown = {m.tier for m in models} - set(self._rank)
        if unknown:
            raise ValueError(f"models use unknown tiers {sorted(unknown)}; known: {self.tiers}")
        self.models: tuple[ModelSpec, ...] = tuple(
            sorted(models, key=lambda m: (self._rank[m.tier], m.price.output_micros_per_mtok))
        )
        self._by_id = {m.id: m for m in self.models}
        # Every capability some model offers: a request needing another can never be served.
        self.capabilities: frozenset[str] = frozenset().union(*(m.capabilities for m in models))

    def get(self, model_id: str) -> ModelSpec | None:
        """The model with this catalog id, or None."""
        return self._by_id.get(model_id)

    def tier_rank(self, tier: str) -> int:
        """0 for the cheapest tier, rising with capability."""
        return self._rank[tier]

    def has_tier(self, tier: str) -> bool:
        """Whether this tier is configured."""
        return tier in self._rank

    @property
    def largest_max_output(self) -> int:
        """The largest max_tokens any model accepts."""
        return max(m.max_output_tokens for m in self.models)
