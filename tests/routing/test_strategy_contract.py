"""The contract every strategy keeps, run over every registered strategy type as the embedded
default configures it: for any request its `violations` accept, it ranks every eligible model
exactly once (dropping none silently, so the router's fallbacks and exclusions stay the whole
story), for any subset of the catalog, and it never refuses a request over the tenant's budget
itself (the budget policy does, with the same error and retry time whatever the strategy)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import get_args

import pytest

from fareway.config.loader import load_config
from fareway.config.schema import FarewayConfig
from fareway.routing.catalog import Catalog, ModelSpec
from fareway.routing.decision import AttemptUsage
from fareway.routing.embedders import EmbedderPool
from fareway.routing.features import extract_features
from fareway.routing.request import RouteRequest, TenantContext
from fareway.routing.strategies import StrategyConfig
from fareway.routing.strategy import Completion, Strategy, StrategyContext
from tests.routing.conftest import MakeRequest

EMBEDDERS = EmbedderPool()  # one for the module: the embedder loads once

PROMPTS = [
    "classify this: spam or not?",
    "Analyze the strategic implications of a price cut for a market leader.",
    "Write a Rust function that parses an ISO-8601 date.",
    "Extract every email address from the text below: alice@example.com wrote to bob.",
    "What is the capital of France?",
    "word " * 400,
]


def registered_types() -> list[str]:
    """The `type` of every strategy configuration the registry accepts."""
    union = get_args(StrategyConfig)[0]
    return sorted(get_args(config.model_fields["type"].annotation)[0] for config in get_args(union))


async def answer_code(
    request: RouteRequest,
    model: ModelSpec,
    system: str,
    prompt: str,
    max_tokens: int,
    timeout_s: float,
) -> Completion:
    """A model call that always answers the route name `code` (the classifier's)."""
    return Completion("code", AttemptUsage(model.id, 40, 1, 45))


def default_strategies(config: FarewayConfig, catalog: Catalog) -> dict[str, Strategy]:
    strategies: dict[str, Strategy] = {}
    context = StrategyContext(
        catalog, embedder=EMBEDDERS.get, complete=answer_code, strategy=strategies.__getitem__
    )
    strategies.update({name: s.build(name, context) for name, s in config.strategies.items()})
    return strategies


def test_every_registered_strategy_type_is_in_the_embedded_default(
    default_config: FarewayConfig,
) -> None:
    configured = {s.type for s in default_config.strategies.values()}
    missing = [t for t in registered_types() if t not in configured]
    assert not missing, f"add an entry of each of {missing} to config/default.yaml's strategies"


def requests(make_request: MakeRequest) -> list[tuple[RouteRequest, TenantContext]]:
    anyone = TenantContext()
    made = [(make_request(prompt), anyone) for prompt in PROMPTS]
    made += [(make_request("summarize the findings", step_type="summarization"), anyone)]
    made += [(make_request("hello", latency_target_ms=300), anyone)]
    # A tenant with nothing left: ranking is not the place to refuse it.
    made += [(make_request("What is 2 + 2?"), TenantContext(budget_remaining_micros=0))]
    return made


def subsets(catalog: Catalog) -> list[Sequence[ModelSpec]]:
    models = list(catalog.models)
    return [models, models[:1], models[1:], models[::2]]


@pytest.mark.parametrize("name", sorted(load_config().strategies))
async def test_a_strategy_ranks_every_eligible_model_once_and_refuses_nothing(
    name: str, default_config: FarewayConfig, catalog: Catalog, make_request: MakeRequest
) -> None:
    strategy = default_strategies(default_config, catalog)[name]

    ranked_any = False
    for request, tenant in requests(make_request):
        if strategy.violations(request.hints):
            continue  # the router refuses these before any ranking
        ranked_any = True
        features = extract_features(request)
        for eligible in subsets(catalog):
            ranking = await strategy.rank(request, features, eligible, tenant)

            ranked = [s.model.id for s in ranking.ranked]
            assert sorted(ranked) == sorted(m.id for m in eligible), (name, request.query[:40])
            assert ranking.reason, "every decision says why"
    assert ranked_any, f"give {name} a request it accepts"
