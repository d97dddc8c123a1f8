"""A labelled set replayed through fareway's own strategies, in process and offline, as the
server builds them from a configuration (the embedded default unless given another): where each
strategy sends every prompt, read as a strong call when the chosen model is in the strong tier.

A strategy that picks tiers (rules, semantic, cascade's first model, cost) has no score to sweep
a threshold over, so it is judged at its operating point (`metrics.operating_point`): its share
of strong calls and its PGR, beside a random router at the same share. Strategies that ask a
model to decide (`classifier`) cannot run offline and are refused by name.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from fareway.config.schema import FarewayConfig
from fareway.evaluation.dataset import LabelledSet
from fareway.routing.catalog import Catalog
from fareway.routing.embedders import EmbedderPool
from fareway.routing.request import ChatMessage, Role, RouteRequest
from fareway.routing.router import Router, TenantPolicy
from fareway.routing.strategy import Strategy, StrategyContext

STRONG_TIER = "powerful"
MAX_TOKENS = 512  # what the replayed requests ask for; it only bounds cost estimates here
OFFLINE_UNSUPPORTED = frozenset({"classifier"})

Progress = Callable[[int, int], None]
"""Told (done, total) as prompts are routed."""


def replayable(config: FarewayConfig) -> list[str]:
    """The configured strategies that can be replayed offline (not agent steps, no model calls)."""
    return sorted(
        name
        for name, settings in config.strategies.items()
        if settings.type not in OFFLINE_UNSUPPORTED and settings.type != "per_step"
    )


async def strong_calls(
    data: LabelledSet,
    strategy: str,
    config: FarewayConfig,
    embedders: EmbedderPool,
    progress: Progress | None = None,
) -> NDArray[np.bool_]:
    """For each prompt, whether `strategy` sends it to the strong tier."""
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
    for index, text in enumerate(data.texts()):
        request = RouteRequest((ChatMessage(Role.USER, text),), MAX_TOKENS, "eval", str(index))
        decision = await router.decide(request, policy)
        calls.append(decision.model.tier == STRONG_TIER)
        if progress is not None:
            progress(index + 1, len(data))
    await router.aclose()
    return np.array(calls, dtype=bool)
