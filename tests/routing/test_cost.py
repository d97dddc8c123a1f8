"""Cost-aware selection: the best model whose estimate fits the ceiling leads, the rest follow
cheapest first, and refusals are the router's and the budget policy's, not the strategy's."""

from __future__ import annotations

import pytest

from fareway.core.errors import NoModelFits
from fareway.routing.catalog import Catalog
from fareway.routing.decision import estimate_cost_micros
from fareway.routing.features import extract_features
from fareway.routing.request import TenantContext
from fareway.routing.router import Router, TenantPolicy
from fareway.routing.strategies.cost import CostConfig
from fareway.routing.strategy import StrategyContext
from tests.routing.conftest import MakeRequest


def costs(catalog: Catalog, prompt_tokens: int, max_tokens: int) -> dict[str, int]:
    return {m.id: estimate_cost_micros(m, prompt_tokens, max_tokens) for m in catalog.models}


async def test_without_a_ceiling_the_best_quality_model_leads(
    catalog: Catalog, make_request: MakeRequest
) -> None:
    strategy = CostConfig(type="cost").build("cost", StrategyContext(catalog))
    request = make_request("hello", max_tokens=100)

    ranking = await strategy.rank(request, extract_features(request), catalog.models)

    assert [s.model.id for s in ranking.ranked] == [
        "claude-opus-4-6",
        "claude-sonnet-4-6",
        "claude-haiku-4-5",
    ]
    assert "cost.ceiling_micros" not in ranking.signals


async def test_the_configured_default_ceiling_applies_when_the_request_sets_none(
    catalog: Catalog, make_request: MakeRequest
) -> None:
    request = make_request("hello", max_tokens=1000)
    features = extract_features(request)
    cost = costs(catalog, features.prompt_tokens, 1000)
    strategy = CostConfig(type="cost", default_max_cost_micros=cost["claude-sonnet-4-6"]).build(
        "cost", StrategyContext(catalog)
    )

    ranking = await strategy.rank(request, features, catalog.models)

    assert [s.model.id for s in ranking.ranked] == [
        "claude-sonnet-4-6",
        "claude-haiku-4-5",
        "claude-opus-4-6",  # over the ceiling: ranked, last, never dropped
    ]
    assert ranking.signals["cost.estimated_micros"] == cost["claude-sonnet-4-6"]


async def test_nothing_fitting_the_budget_puts_the_cheapest_first_and_refuses_nothing(
    catalog: Catalog, make_request: MakeRequest
) -> None:
    request = make_request("hello", max_tokens=1000)
    features = extract_features(request)
    cheapest = costs(catalog, features.prompt_tokens, 1000)["claude-haiku-4-5"]
    strategy = CostConfig(type="cost").build("cost", StrategyContext(catalog))
    spent = TenantContext(budget_remaining_micros=0)

    ranking = await strategy.rank(request, features, catalog.models, spent)

    assert [s.model.id for s in ranking.ranked] == [
        "claude-haiku-4-5",
        "claude-sonnet-4-6",
        "claude-opus-4-6",
    ]
    assert ranking.reason == (
        f"no model fits the ceiling of 0 micro-USD; the cheapest, claude-haiku-4-5, is "
        f"estimated at {cheapest} micro-USD"
    )


async def test_a_request_ceiling_nothing_fits_is_refused_by_the_router(
    router: Router, make_request: MakeRequest, catalog: Catalog
) -> None:
    request = make_request("hello", max_tokens=1000, max_cost_micros=10, strategy="cost")
    cheapest = costs(catalog, extract_features(request).prompt_tokens, 1000)["claude-haiku-4-5"]

    with pytest.raises(NoModelFits) as caught:
        await router.decide(request, TenantPolicy("cost"))

    assert f"the cheapest, claude-haiku-4-5, is estimated at {cheapest}" in str(caught.value)
