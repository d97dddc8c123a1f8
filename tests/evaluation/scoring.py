"""A scoring strategy for tests: what `learned` will look like to `fareway eval`, without it.

It reads each prompt's strong-score from a table, puts it in the decision's signals as
`scored.strong_score`, and sends the prompt to the powerful tier when the score is at least
`threshold`. `with_scoring` adds it to a configuration the way the server would find it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fareway.config.schema import FarewayConfig
from fareway.routing.catalog import ModelSpec
from fareway.routing.features import Features
from fareway.routing.request import UNKNOWN_TENANT, RouteRequest, TenantContext
from fareway.routing.strategy import (
    AcceptsAnyHints,
    Ranking,
    StrategyContext,
    rank_towards,
)

SIGNAL = "scored.strong_score"


class TableStrategy(AcceptsAnyHints):
    """Strong-scores looked up by prompt text; powerful at or above the threshold."""

    def __init__(
        self, name: str, context: StrategyContext, table: Mapping[str, float], threshold: float
    ) -> None:
        self.name = name
        self._catalog = context.catalog
        self._table = table
        self._threshold = threshold

    async def rank(
        self,
        request: RouteRequest,
        features: Features,
        eligible: Sequence[ModelSpec],
        tenant: TenantContext = UNKNOWN_TENANT,
    ) -> Ranking:
        score = self._table[request.query]
        tier = "powerful" if score >= self._threshold else "fast"
        ranked = rank_towards(self._catalog, tier, eligible)
        return Ranking(ranked, f"score {score:g}", signals={SIGNAL: score})


@dataclass(frozen=True)
class TableConfig:
    """The configuration entry of a `TableStrategy` (duck-typed as the server's entries are)."""

    table: Mapping[str, float]
    threshold: float = 0.5
    type: str = "table"

    def build(self, name: str, context: StrategyContext) -> TableStrategy:
        return TableStrategy(name, context, self.table, self.threshold)


def with_scoring(config: FarewayConfig, name: str, entry: TableConfig) -> FarewayConfig:
    """`config` with one more strategy, `name`."""
    return config.model_copy(update={"strategies": {**config.strategies, name: entry}})
