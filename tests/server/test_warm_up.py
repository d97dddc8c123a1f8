"""Strategies with first-time work do it before the server serves: building the runtime of the
embedded default loads the semantic strategy's embedder (and embeds its examples), and the
router warms up and closes every strategy that has a lifecycle."""

from __future__ import annotations

from collections.abc import Sequence

from fareway.budgets.registry import MemoryLedgerConfig
from fareway.config.loader import load_config
from fareway.core.clock import ManualClock
from fareway.routing.catalog import Catalog, ModelSpec
from fareway.routing.features import Features
from fareway.routing.request import Hints, RouteRequest
from fareway.routing.router import Router
from fareway.routing.strategy import Ranking, Scored
from fareway.server.runtime import build_runtime
from tests.server.harness import ENV, make_config


class Recording:
    """A strategy with a lifecycle that records its calls."""

    name = "recording"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def violations(self, hints: Hints) -> list[object]:
        return []

    async def rank(
        self, request: RouteRequest, features: Features, eligible: Sequence[ModelSpec]
    ) -> Ranking:
        return Ranking([Scored(m, 1.0) for m in eligible], "recorded")

    async def warm_up(self) -> None:
        self.calls.append("warm_up")

    async def aclose(self) -> None:
        self.calls.append("aclose")


async def test_the_router_warms_up_and_closes_strategies_that_have_a_lifecycle() -> None:
    config = make_config()
    recording = Recording()
    router = Router(Catalog((m.spec() for m in config.models), config.tiers), {"r": recording})

    await router.warm_up()
    await router.aclose()

    assert recording.calls == ["warm_up", "aclose"]


async def test_the_embedded_default_loads_its_embedder_before_serving() -> None:
    config = load_config().model_copy(update={"ledger": MemoryLedgerConfig(type="memory")})
    runtime = await build_runtime(config, ManualClock(), {**ENV, "FAREWAY_DEMO_KEY": "k"})
    try:
        assert runtime.embedders.loaded("wordllama")
    finally:
        await runtime.aclose()
