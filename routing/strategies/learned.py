"""Learned routing (F8): a trained model predicts whether the weak model would do, per request.

The model (`fareway.routing.learned`) reads the request's last user turn (its embedding by a
local embedder, and a few cheap features such as its length) and gives a strong-score in
[0, 1]: the predicted probability that the strong model is needed (that the weak one falls
short). At or above the threshold the request goes to `strong` (a tier or a model id), below
it to `weak`. The threshold comes from a share of strong calls: the score that sends the model
file's calibrated `strong_share` of its training prompts strong, or this strategy's
`strong_share` when set, so that a deployment moves along the cost-quality curve without
retraining.

`model` names a file written by `fareway train`; empty means the model fareway ships, trained
on RouteLLM's public GSM8K and MMLU labels (docs/ROUTING_QUALITY.md says how well it routes).
The file and the embedder it names load in `warm_up`, through `run_cpu`; each request then
embeds one bounded text through `run_cpu` too, never on the event loop.

Signals: `learned.strong_score` (the probability, so that a user can re-calibrate the share
offline from logged decisions) and `learned.threshold` (what it was compared with).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field

from fareway.routing.catalog import Catalog, ModelSpec
from fareway.routing.embedding import Embedder, EmbedderFor
from fareway.routing.features import Features
from fareway.routing.request import UNKNOWN_TENANT, RouteRequest, TenantContext
from fareway.routing.strategy import (
    AcceptsAnyHints,
    Problem,
    Ranking,
    RunCpu,
    StrategyContext,
    describe_target,
    rank_towards,
    target_problem,
)

if TYPE_CHECKING:  # numpy and the model load with the strategy's first use, not with the config
    from fareway.routing.learned.model import LearnedModel

STRONG_SCORE_SIGNAL = "learned.strong_score"
THRESHOLD_SIGNAL = "learned.threshold"


class LearnedConfig(BaseModel):
    """The `type: learned` entry of `strategies`."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["learned"]
    model: str = ""  # a model file from `fareway train`; empty: the one fareway ships
    strong_share: float | None = Field(None, ge=0, le=1)  # None: the model file's own
    weak: str = "fast"  # a tier or a model id, for requests the weak model suffices for
    strong: str = "powerful"  # and for the rest

    def build(self, name: str, context: StrategyContext) -> LearnedStrategy:
        """The strategy this configuration describes (the model loads in `warm_up`)."""
        return LearnedStrategy(
            context.catalog,
            Path(self.model) if self.model else None,
            self.strong_share,
            (self.weak, self.strong),
            context.embedder,
            context.run_cpu,
            name,
        )

    def problems(self, tiers: Sequence[str], models: Sequence[str]) -> list[Problem]:
        """Targets that are neither a tier nor a model, and a model file that does not exist."""
        found = target_problem(("weak",), self.weak, tiers, models)
        found += target_problem(("strong",), self.strong, tiers, models)
        if self.model and not Path(self.model).is_file():
            found.append((("model",), f"no learned model file at {self.model}"))
        return found


@dataclass(frozen=True)
class Loaded:
    """The model, the embedder it was trained with, and the threshold at the strategy's share
    (fixed for the model's life, so found once here rather than on every request)."""

    model: LearnedModel
    embedder: Embedder
    share: float
    threshold: float

    def score(self, query: str) -> float:
        """The strong-score of one query (blocking: one embedding)."""
        from fareway.routing.learned.model import model_inputs

        inputs = model_inputs(self.embedder, [query], self.model.features)
        return float(self.model.strong_scores(inputs)[0])


class LearnedStrategy(AcceptsAnyHints):
    """The strong target at or above the threshold, the weak one below it."""

    def __init__(
        self,
        catalog: Catalog,
        model_path: Path | None,
        strong_share: float | None,
        targets: tuple[str, str],
        embedder_for: EmbedderFor,
        run_cpu: RunCpu,
        name: str = "learned",
    ) -> None:
        self.name = name
        self._catalog = catalog
        self._model_path = model_path
        self._strong_share = strong_share
        self._weak, self._strong = targets
        self._embedder_for = embedder_for
        self._run_cpu = run_cpu
        self._loaded: Loaded | None = None

    async def warm_up(self) -> None:
        """Load the model file and its embedder before the first request."""
        await self._ready()

    async def aclose(self) -> None:
        """Nothing of its own to release: the embedder is the pool's."""
        self._loaded = None

    async def rank(
        self,
        request: RouteRequest,
        features: Features,
        eligible: Sequence[ModelSpec],
        tenant: TenantContext = UNKNOWN_TENANT,
    ) -> Ranking:
        loaded = await self._ready()
        score = await self._run_cpu(lambda: loaded.score(features.query))
        share, threshold = loaded.share, loaded.threshold
        strong = score >= threshold
        target = self._strong if strong else self._weak
        why = (
            f"learned strong-score {score:.2f} {'>=' if strong else '<'} {threshold:.2f} "
            f"(the top {share:.0%} of its training prompts go strong), so"
        )
        signals = {STRONG_SCORE_SIGNAL: score, THRESHOLD_SIGNAL: threshold}
        ranked = rank_towards(self._catalog, target, eligible)
        return Ranking(ranked, f"{why} {describe_target(self._catalog, target)}", signals)

    async def _ready(self) -> Loaded:
        loaded = self._loaded
        if loaded is None:
            # Concurrent first requests may each load; the embedder pool loads its model once.
            loaded = await self._run_cpu(self._load)
            self._loaded = loaded
        return loaded

    def _load(self) -> Loaded:
        from fareway.routing.learned.model import DEFAULT_MODEL, load_model

        model = load_model(self._model_path or DEFAULT_MODEL)
        share = model.strong_share if self._strong_share is None else self._strong_share
        return Loaded(model, self._embedder_for(model.embedder), share, model.threshold_at(share))
