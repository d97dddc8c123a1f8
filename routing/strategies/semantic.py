"""Semantic routing (F3): routes defined by example requests, matched by meaning.

Each route has example utterances and a target (a tier or a model id). A request's instruction
is embedded by a local embedder (`routing.embedders`) and scored against every route; the best
route's target leads the ranking, unless its score is below `threshold`, when the `default`
route's does. Every eligible model is ranked (`rank_towards` the target), none dropped.

- **What is embedded**: the instruction of the last user turn (`Features.instruction`: the turn
  without its payload of fenced code, long quotes and what an introducing colon leads to), so
  that "Classify this review: <a long review>" reads as the classification it is, and at most
  EMBED_CHARS characters of it: all of it up to that, else its first and last EMBED_CHARS / 2
  (where an instruction usually is, before or after pasted material). A 3 MB prompt costs what
  a 512-character one does. A turn that is all payload embeds its own head instead.
- **A route's score** is the mean of two cosine similarities: to the route's nearest example,
  and to the centroid of its examples (their mean, scaled to length 1). The nearest example
  rewards a close paraphrase; the centroid rewards a request like the route as a whole, so one
  stray example (an extraction example that mentions JSON) pulls less hard on requests that
  merely share its words. On a development set of 64 requests written apart from these routes
  (bench/embedders.py's), each scoring at its best threshold routed to the right tier: the mean
  92% with wordllama (nearest example 89%, centroid 91%) and 94% with MiniLM (92%, 89%).
- **The threshold** compares with that score and belongs to the embedder: scores from
  different embedders are not comparable. Choose it on requests that are not the examples: the
  default configuration's 0.16 for wordllama is the middle of the thresholds (0.15 to 0.18) at
  which the development set routes best; below it fall 16 of 26 requests that fit no route
  (greetings, trivia, creative writing).
- **Cost**: the examples are embedded once, on the first request, through the server's
  `run_cpu` and the shared `example_index` cache (a reload with the same examples and embedder
  embeds nothing); each request embeds one text, also through `run_cpu`, never on the event
  loop.

**Otherwise**: a configuration may name a `learned` strategy in `otherwise`; then a request no
route reaches goes where that strategy sends it (by predicted difficulty) instead of to the
default route, and its reason and signals join semantic's. Intent decides where it is clear,
difficulty where it is not.

Signals: `semantic.similarity` (the chosen route's score, as compared with the threshold; the
best route's even when the default answered) and `semantic.margin` (the best route's score less
the second best's; the best's own score when there is one route). The reason names the route,
its score and its nearest example.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from fareway.routing.catalog import Catalog, ModelSpec
from fareway.routing.echo import echo
from fareway.routing.embedding import Embedder, EmbedderFor, Vectors
from fareway.routing.features import Features
from fareway.routing.request import UNKNOWN_TENANT, RouteRequest, TenantContext
from fareway.routing.strategy import (
    AcceptsAnyHints,
    Problem,
    Ranking,
    RunCpu,
    StrategyContext,
    StrategyLookup,
    describe_target,
    rank_towards,
    target_problem,
    unknown,
)

EMBED_CHARS = 512  # at most this much of the instruction is embedded
EXAMPLE_CHARS = 60  # a reason quotes this much of the nearest example
SIMILARITY_SIGNAL = "semantic.similarity"
MARGIN_SIGNAL = "semantic.margin"


class SemanticRoute(BaseModel):
    """One route: where it sends requests, and examples of the requests it is for."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    target: str  # a tier name or a model id
    examples: tuple[str, ...] = Field(min_length=1)


class SemanticConfig(BaseModel):
    """The `type: semantic` entry of `strategies`."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["semantic"]
    routes: dict[str, SemanticRoute] = Field(min_length=1)
    default: str  # the route that answers when no route's score reaches the threshold
    threshold: float = Field(ge=-1, le=1)  # compared with a route's score (a cosine)
    embedder: str = ""  # empty: fareway.routing.embedders.DEFAULT_EMBEDDER
    # A `learned` strategy that decides instead of the default route when no route reaches the
    # threshold: intent where it is clear, difficulty otherwise. Empty: the default route.
    otherwise: str = ""

    def uses(self) -> dict[str, str]:
        """The other strategies this one needs, by the field naming them: {field: type}."""
        return {"otherwise": "learned"} if self.otherwise else {}

    def build(self, name: str, context: StrategyContext) -> SemanticStrategy:
        """The strategy this configuration describes (nothing is embedded until it routes)."""
        embedder = self.embedder or _default_embedder()
        return SemanticStrategy(
            context.catalog,
            self.routes,
            self.default,
            self.threshold,
            Embedding(embedder, context.embedder, context.run_cpu),
            name,
            Otherwise(self.otherwise, context.strategy) if self.otherwise else None,
        )

    def problems(self, tiers: Sequence[str], models: Sequence[str]) -> list[Problem]:
        """Targets that are neither a tier nor a model, a default that is not a route, blank
        examples and an embedder fareway does not ship."""
        found: list[Problem] = []
        for route, spec in self.routes.items():
            found += target_problem(("routes", route, "target"), spec.target, tiers, models)
            for index, example in enumerate(spec.examples):
                if not example.strip():
                    found.append((("routes", route, "examples", index), "an example is blank"))
        if self.default not in self.routes:
            found.append((("default",), unknown("route", self.default, self.routes)))
        if self.embedder:
            known = _embedder_names()
            if self.embedder not in known:
                found.append((("embedder",), unknown("embedder", self.embedder, known)))
        return found


def _default_embedder() -> str:
    from fareway.routing.embedders import DEFAULT_EMBEDDER

    return DEFAULT_EMBEDDER


def _embedder_names() -> list[str]:
    from fareway.routing.embedders import LOADERS

    return sorted(LOADERS)


@dataclass(frozen=True)
class Embedding:
    """How the strategy reaches its embedder: by name from the server's shared ones, with
    blocking work run through `run_cpu`."""

    name: str
    embedder_for: EmbedderFor
    run_cpu: RunCpu


@dataclass(frozen=True)
class Otherwise:
    """The strategy that ranks when no route reaches the threshold, found by name on use (it
    may be built after this one)."""

    name: str
    lookup: StrategyLookup


@dataclass(frozen=True)
class RouteScore:
    """One route's score for a request, and its nearest example."""

    route: str
    score: float
    example: str
    example_similarity: float


class RouteIndex:
    """Every route's example vectors and centroid under one embedder (built blocking, once)."""

    def __init__(self, embedder: Embedder, routes: Mapping[str, SemanticRoute]) -> None:
        import numpy as np  # with the embedders: not imported until a semantic route is used

        from fareway.routing.embedders import example_index, unit_rows

        self.embedder = embedder
        self.names = tuple(routes)
        self.examples = example_index(embedder, [e for r in routes.values() for e in r.examples])
        bounds, start = [], 0
        for route in routes.values():
            bounds.append((start, start + len(route.examples)))
            start += len(route.examples)
        self.bounds = tuple(bounds)
        vectors = self.examples.vectors
        self.centroids = unit_rows(np.stack([vectors[a:b].mean(axis=0) for a, b in bounds]))

    def score(self, text: str) -> list[RouteScore]:
        """Every route's score for `text`, best first (blocking: one embedding)."""
        query: Vectors = self.embedder.embed([text])
        similarities = self.examples.scores(query)
        to_centroids = self.centroids @ query.reshape(-1)
        scored = []
        for position, (name, (start, end)) in enumerate(zip(self.names, self.bounds, strict=True)):
            nearest = start + int(similarities[start:end].argmax())
            best = float(similarities[nearest])
            scored.append(
                RouteScore(
                    name,
                    (best + float(to_centroids[position])) / 2,
                    self.examples.examples[nearest],
                    best,
                )
            )
        return sorted(scored, key=lambda s: -s.score)


class SemanticStrategy(AcceptsAnyHints):
    """The nearest route by meaning, or the default route below the threshold."""

    def __init__(
        self,
        catalog: Catalog,
        routes: Mapping[str, SemanticRoute],
        default: str,
        threshold: float,
        embedding: Embedding,
        name: str = "semantic",
        otherwise: Otherwise | None = None,
    ) -> None:
        self.name = name
        self._otherwise = otherwise
        self._catalog = catalog
        self._routes = dict(routes)
        self._default = default
        self._threshold = threshold
        self._embedding = embedding
        self._index: RouteIndex | None = None

    @property
    def route_targets(self) -> dict[str, str]:
        """Each route's target (a tier or a model id), in configuration order."""
        return {name: route.target for name, route in self._routes.items()}

    @property
    def route_examples(self) -> dict[str, tuple[str, ...]]:
        """Each route's examples, in configuration order."""
        return {name: route.examples for name, route in self._routes.items()}

    @property
    def default_route(self) -> str:
        """The route that answers below the threshold."""
        return self._default

    async def warm_up(self) -> None:
        """Load the embedder and embed the examples before the first request."""
        await self._ready_index()

    async def aclose(self) -> None:
        """Nothing of its own to release: the embedder and its cache are the pool's."""
        self._index = None

    async def rank(
        self,
        request: RouteRequest,
        features: Features,
        eligible: Sequence[ModelSpec],
        tenant: TenantContext = UNKNOWN_TENANT,
    ) -> Ranking:
        text = embedded_text(features)
        index = await self._ready_index()
        scores = await self._embedding.run_cpu(lambda: index.score(text))
        best = scores[0]
        margin = best.score - (scores[1].score if len(scores) > 1 else 0.0)
        signals = {SIMILARITY_SIGNAL: best.score, MARGIN_SIGNAL: margin}
        nearest = f'nearest example "{echo(best.example, EXAMPLE_CHARS)}"'
        if best.score >= self._threshold:
            target = self._routes[best.route].target
            why = f"semantic route '{best.route}' (similarity {best.score:.2f}, {nearest}), so"
        elif self._otherwise is not None:
            other = await self._otherwise.lookup(self._otherwise.name).rank(
                request, features, eligible, tenant
            )
            why = (
                f"no semantic route reached the threshold {self._threshold:.2f} (best "
                f"'{best.route}' at {best.score:.2f}), so {self._otherwise.name}: {other.reason}"
            )
            return Ranking(other.ranked, why, {**signals, **other.signals}, spent=other.spent)
        else:
            target = self._routes[self._default].target
            why = (
                f"no semantic route reached the threshold {self._threshold:.2f} (best "
                f"'{best.route}' at {best.score:.2f}, {nearest}), so the default route "
                f"'{self._default}' and"
            )
        ranked = rank_towards(self._catalog, target, eligible)
        return Ranking(ranked, f"{why} {describe_target(self._catalog, target)}", signals)

    async def _ready_index(self) -> RouteIndex:
        index = self._index
        if index is None:
            # Concurrent first requests may each get here; `example_index` embeds the examples
            # once and hands the others the same vectors.
            index = await self._embedding.run_cpu(self._build_index)
            self._index = index
        return index

    def _build_index(self) -> RouteIndex:
        embedder = self._embedding.embedder_for(self._embedding.name)
        return RouteIndex(embedder, self._routes)


def embedded_text(features: Features) -> str:
    """The part of the request that is embedded: the instruction, at most EMBED_CHARS
    characters of it (its head and tail when longer); the turn's head when it is all payload."""
    text = features.instruction.text.strip() or features.query[:EMBED_CHARS]
    if len(text) <= EMBED_CHARS:
        return text
    half = EMBED_CHARS // 2
    return f"{text[:half]}\n{text[-half:]}"
