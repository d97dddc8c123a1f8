"""LLM-classifier routing, the seed article's variant of semantic routing: a cheap model reads
the request and answers with one route name; that route's target leads the ranking.

The routes are a `semantic` strategy's (`routes_from`): the classifier is shown each route's
name and two of its examples, and the request's instruction (what the semantic strategy would
embed). Then:
- an answer that is a route name (case, quotes and a full stop aside) picks that route;
- any other answer picks the semantic strategy's default route;
- no answer at all (the call timed out after `timeout_s`, failed, or the tenant could not
  afford it) falls back to the semantic strategy's own answer, by embedding.

The call goes through the server's `StrategyContext.complete`: held and settled on the
request's tenant, traced as an attempt under the request's route span, and reported on the
request's stream as a `usage` (`Ranking.spent`). Signals: `classifier.answered` (1 when a
route name came back, 0 otherwise) besides the semantic strategy's when it answered.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from fareway.core.errors import BudgetExceeded
from fareway.routing.catalog import Catalog, ModelSpec
from fareway.routing.decision import AttemptUsage
from fareway.routing.echo import echo
from fareway.routing.features import Features
from fareway.routing.request import UNKNOWN_TENANT, RouteRequest, TenantContext
from fareway.routing.strategies.semantic import SemanticStrategy, embedded_text
from fareway.routing.strategy import (
    AcceptsAnyHints,
    Complete,
    Problem,
    Ranking,
    StrategyContext,
    StrategyLookup,
    describe_target,
    rank_towards,
    unknown,
)

ANSWERED_SIGNAL = "classifier.answered"
SHOWN_EXAMPLES = 2  # examples of each route in the classifier's prompt
ANSWER_CHARS = 40  # of an unexpected answer, in the reason


class ClassifierConfig(BaseModel):
    """The `type: classifier` entry of `strategies`."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["classifier"]
    model: str  # catalog id of the cheap model asked
    routes_from: str  # a `semantic` strategy: its routes, default route and fallback answer
    timeout_s: float = Field(2.0, gt=0)
    max_tokens: int = Field(8, gt=0)  # a route name is a word or two

    def build(self, name: str, context: StrategyContext) -> ClassifierStrategy:
        """The strategy this configuration describes."""
        return ClassifierStrategy(self, context.catalog, context.complete, context.strategy, name)

    def uses(self) -> dict[str, str]:
        """The other strategies this one needs, by the field naming them: {field: type}."""
        return {"routes_from": "semantic"}

    def problems(self, tiers: Sequence[str], models: Sequence[str]) -> list[Problem]:
        """The asked model must be in the catalog."""
        if self.model in models:
            return []
        return [(("model",), unknown("model", self.model, models))]


class ClassifierStrategy(AcceptsAnyHints):
    """The route a cheap model names; the semantic strategy's answer when it names none."""

    def __init__(
        self,
        config: ClassifierConfig,
        catalog: Catalog,
        complete: Complete,
        strategy: StrategyLookup,
        name: str = "classifier",
    ) -> None:
        self.name = name
        self._config = config
        self._catalog = catalog
        self._complete = complete
        self._strategy = strategy

    async def rank(
        self,
        request: RouteRequest,
        features: Features,
        eligible: Sequence[ModelSpec],
        tenant: TenantContext = UNKNOWN_TENANT,
    ) -> Ranking:
        semantic = self._semantic()
        model = self._catalog.get(self._config.model)
        assert model is not None, "problems() checks the model"
        try:
            completion = await self._complete(
                request,
                model,
                _system(semantic),
                embedded_text(features),
                self._config.max_tokens,
                self._config.timeout_s,
            )
        except BudgetExceeded:
            return await self._by_embedding(semantic, (request, features, eligible, tenant), "", ())
        if completion.error is not None:
            spent = (completion.usage,) if completion.usage.used else ()
            why = f" ({completion.error.describe()})"
            return await self._by_embedding(
                semantic, (request, features, eligible, tenant), why, spent
            )
        answer = completion.text.strip()
        route = _route_named(answer, semantic.route_targets)
        if route is None:
            route = semantic.default_route
            heard = f"answered '{echo(answer, ANSWER_CHARS)}', not a route: the default route"
        else:
            heard = "answered"
        target = semantic.route_targets[route]
        reason = (
            f"the classifier {model.id} {heard} '{route}', so "
            f"{describe_target(self._catalog, target)}"
        )
        answered = 1.0 if heard == "answered" else 0.0
        return Ranking(
            rank_towards(self._catalog, target, eligible),
            reason,
            {ANSWERED_SIGNAL: answered},
            spent=(completion.usage,),
        )

    async def _by_embedding(
        self,
        semantic: SemanticStrategy,
        asked: tuple[RouteRequest, Features, Sequence[ModelSpec], TenantContext],
        why: str,
        spent: tuple[AttemptUsage, ...],
    ) -> Ranking:
        """The semantic strategy's answer, when the classifier gave none (`why`, or the budget
        could not cover asking it)."""
        fallback = await semantic.rank(*asked)
        cause = why or " (the tenant cannot afford asking it)"
        reason = f"the classifier {self._config.model} gave no answer{cause}; {fallback.reason}"
        signals = {**fallback.signals, ANSWERED_SIGNAL: 0.0}
        return Ranking(fallback.ranked, reason, signals, spent=spent)

    def _semantic(self) -> SemanticStrategy:
        strategy = self._strategy(self._config.routes_from)
        if not isinstance(strategy, SemanticStrategy):
            raise TypeError(f"routes_from {self._config.routes_from!r} is not a semantic strategy")
        return strategy


def _system(semantic: SemanticStrategy) -> str:
    """The classifier's instructions: the route names, each with a few examples."""
    lines = [
        "You route requests to the right kind of model. Read the user's request and reply with",
        "exactly one route name from the list below, and nothing else.",
        "",
    ]
    for route, examples in semantic.route_examples.items():
        shown = "; ".join(f'"{e}"' for e in examples[:SHOWN_EXAMPLES])
        lines.append(f"- {route} (for example {shown})")
    return "\n".join(lines)


def _route_named(answer: str, routes: dict[str, str]) -> str | None:
    """The route `answer` names, ignoring case, quotes, backticks and a final full stop."""
    word = answer.strip().strip("\"'`").rstrip(".").strip().lower()
    return next((route for route in routes if route.lower() == word), None)
