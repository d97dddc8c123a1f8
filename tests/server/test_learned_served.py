"""The learned strategy through the real server, on the embedded default and the model fareway
ships: every decision carries `learned.strong_score` (what a user re-calibrates from), the
threshold it was compared with and a reason that says both; the share moves with the
configuration; and the model loads before the server reports SERVING, not on a first request."""

from __future__ import annotations

from importlib import resources

import pytest

from fareway.budgets.memory import MemoryLedger
from fareway.config.loader import load_config, parse_config
from fareway.config.schema import FarewayConfig
from fareway.core.clock import ManualClock
from fareway.routing.learned.model import DEFAULT_MODEL, load_model
from fareway.routing.strategies.learned import STRONG_SCORE_SIGNAL, THRESHOLD_SIGNAL
from fareway.v1 import router_pb2
from tests.server.harness import Harness, HarnessFactory, metadata, user_request

SHIPPED = load_model(DEFAULT_MODEL)
DEMO_KEY = "fareway-demo-key"
AUTH = metadata(DEMO_KEY)
ENV = {"FAREWAY_DEMO_KEY": DEMO_KEY}  # no provider keys: the default catalog is simulated
EASY = "What is the capital of France?"
HARD = (
    "A store sells pencils at $0.35 each and pens at $1.20 each. Maria buys 3 times as many "
    "pencils as pens and spends $27.90 in all, then returns 4 pens for a 15% restocking fee "
    "on each. How many pencils did she buy, and how much money does she get back in total?"
)


async def start(serve: HarnessFactory, config: FarewayConfig | None = None) -> Harness:
    clock = ManualClock()
    harness: Harness = await serve(
        config or load_config(), clock=clock, env=ENV, ledger=MemoryLedger(clock)
    )
    return harness


async def decide(harness: Harness, text: str) -> router_pb2.RouteDecision:
    request = user_request(text, strategy="learned")
    decision: router_pb2.RouteDecision = await harness.router.Route(request, metadata=AUTH)
    return decision


async def test_every_decision_reports_its_strong_score_and_threshold(
    serve: HarnessFactory,
) -> None:
    harness = await start(serve)

    easy, hard = await decide(harness, EASY), await decide(harness, HARD)

    for decision in (easy, hard):
        assert decision.strategy == "learned"
        assert 0.0 <= decision.signals[STRONG_SCORE_SIGNAL] <= 1.0
        # strong_share 0.3 in default.yaml
        assert decision.signals[THRESHOLD_SIGNAL] == pytest.approx(SHIPPED.threshold_at(0.3))
        assert decision.reason.startswith(
            f"learned strong-score {decision.signals[STRONG_SCORE_SIGNAL]:.2f} "
        )
        assert len(decision.candidates) == 3
    # A multi-step word problem needs the strong model more than a capital does.
    assert hard.signals[STRONG_SCORE_SIGNAL] > easy.signals[STRONG_SCORE_SIGNAL]
    assert easy.tier == "fast"


async def test_the_share_in_the_configuration_moves_the_threshold(serve: HarnessFactory) -> None:
    default = resources.files("fareway.config").joinpath("default.yaml").read_text("utf-8")
    everything = default.replace("    strong_share: 0.3\n", "    strong_share: 1.0\n", 1)
    harness = await start(serve, parse_config(everything, "fareway.yaml"))

    decision = await decide(harness, EASY)

    assert decision.signals[THRESHOLD_SIGNAL] == 0.0  # every score reaches it
    assert decision.tier == "powerful"
    assert "(the top 100% of its training prompts go strong), so the powerful tier" in (
        decision.reason
    )
