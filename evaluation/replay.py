"""A labelled set replayed through fareway's own strategies, in process and offline, as the
server builds them from a configuration (the embedded default unless given another): where each
strategy sends every prompt, read as a strong call when the chosen model is in the strong tier.

A strategy that picks tiers (rules, semantic, cascade's first model, cost) has no score to sweep
a threshold over, so it is judged at its operating point (`metrics.operating_point`): its share
of strong calls and its PGR, beside a random router at the same share. Strategies that ask a
model to decide (`classifier`) cannot run offline and are refused by name.

A scoring strategy puts its score in the decision's signals under a name ending in
`.strong_score` (the `learned` strategy's `learned.strong_score`). When every decision carries
exactly one such signal, the replay keeps it per prompt and the strategy is judged by its whole
curve (APGR, CPT) as well as by its operating point. When some decision carries none, or two,
there is no one score to sweep a threshold over (a strategy that consults a scorer only for some
prompts, say), and only the operating point is reported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fareway.config.schema import FarewayConfig
from fareway.core.content import Message
from fareway.evaluation.dataset import FloatArray, LabelledSet
from fareway.routing.catalog import Catalog
from fareway.routing.embedders import EmbedderPool
from fareway.routing.request import RouteRequest
from fareway.routing.router import Router, TenantPolicy
from fareway.routing.strategy import Strategy, StrategyContext

STRONG_TIER = "powerful"
MAX_TOKENS = 512  # what the replayed requests ask for; it only bounds cost estimates here
OFFLINE_UNSUPPORTED = frozenset({"classifier"})
SCORE_SUFFIX = ".strong_score"

Progress = Callable[[int, int], None]
"""Told (done, total) as prompts are routed."""


@dataclass(frozen=True, slots=True)
class Replay:
    """Where a strategy sent each prompt: `strong_calls[i]` is True when prompt i went to the
    strong tier; `scores` holds its strong-score per prompt, or None for a strategy that picks
    tiers without one (module docstring)."""

    strong_calls: NDArray[np.bool_]
    scores: FloatArray | None


def replayable(config: FarewayConfig) -> list[str]:
    """The configured strategies that can be replayed offline (not agent steps, no model calls)."""
    return sorted(
        name
        for name, settings in config.strategies.items()
        if settings.type not in OFFLINE_UNSUPPORTED and settings.type != "per_step"
    )


async def replay(
    data: LabelledSet,
    strategy: str,
    config: FarewayConfig,
    embedders: EmbedderPool,
    progress: Progress | None = None,
) -> Replay:
    """Route every prompt of `data` with `strategy`, as the server would, and collect the tiers
    it picked and, for a scoring strategy, its strong-scores."""
    if strategy not in replayable(config):
        known = ", ".join(replayable(config))
        raise ValueError(f"strategy {strategy!r} cannot be replayed offline; these can: {known}")
    catalog = Catalog((m.spec() for m in config.models), config.tiers)
    strategies: dict[str, Strategy] = {}
    context = StrategyContext(catalog, embedder=embedders.get, strategy=strategies.__getitem__)
    strategies.update({n: s.build(n, context) for n, s in config.strategies.items()})
    router = Router(catalog, strategies)
    await router.warm_up()
    policy = TenantPolicy(strategy=strategy)
    calls: list[bool] = []
    scores: list[float | None] = []
    for index, text in enumerate(data.texts()):
        request = RouteRequest((Message.user(text),), MAX_TOKENS, "eval", str(index))
        decision = await router.decide(request, policy)
        calls.append(decision.model.tier == STRONG_TIER)
        scores.append(strong_score(decision.signals))
        if progress is not None:
            progress(index + 1, len(data))
    await router.aclose()
    scored = None if None in scores else np.array(scores, dtype=np.float64)
    return Replay(np.array(calls, dtype=bool), scored)


def strong_score(signals: Mapping[str, float]) -> float | None:
    """The one `<name>.strong_score` signal of a decision; None when it has none or several."""
    found = [value for name, value in signals.items() if name.endswith(SCORE_SUFFIX)]
    return found[0] if len(found) == 1 else None
