"""The plan on a decision: the router attaches the fallback order (bounded by max_attempts),
and a decision re-ranked by the budget carries a plan rebuilt from its new order."""

from __future__ import annotations

from fareway.budgets.ledger import BudgetState, Limit, LimitState, OnExceed
from fareway.budgets.windows import Window
from fareway.routing.catalog import Catalog
from fareway.routing.decision import Plan
from fareway.routing.router import Router, TenantPolicy
from fareway.server.budget_policy import apply_budget
from tests.routing.conftest import MakeRequest

ANALYSIS = "analyze the strategic implications of a price cut"  # the powerful tier first


def budget(limit: Limit, spent_micros: int) -> BudgetState:
    return BudgetState("demo", (LimitState(limit, spent_micros, 0, None),), 0, 1.0)


async def test_the_plan_is_the_ranking_after_the_first_model(
    router: Router, policy: TenantPolicy, make_request: MakeRequest
) -> None:
    decision = await router.decide(make_request(ANALYSIS), policy)

    assert decision.plan.fallbacks == tuple(c.model for c in decision.ranked[1:3])
    assert decision.plan.cascade is None
    assert decision.plan.hedge is None


async def test_max_attempts_bounds_the_plan(
    router: Router, policy: TenantPolicy, make_request: MakeRequest
) -> None:
    router.max_attempts = 2
    decision = await router.decide(make_request(ANALYSIS), policy)

    assert decision.plan.fallbacks == (decision.ranked[1].model,)
    router.max_attempts = 1
    assert (await router.decide(make_request(ANALYSIS), policy)).plan == Plan()


async def test_a_downgrade_rebuilds_the_plan_from_the_new_order(
    router: Router, policy: TenantPolicy, make_request: MakeRequest, catalog: Catalog
) -> None:
    decision = await router.decide(make_request(ANALYSIS), policy)
    soft = Limit(Window.DAY, 1_000_000, soft_fraction=0.5)

    downgraded = apply_budget(decision, budget(soft, 900_000), catalog)

    assert downgraded.model is not decision.model
    assert downgraded.plan.fallbacks == tuple(c.model for c in downgraded.ranked[1:3])
    assert downgraded.model not in downgraded.plan.fallbacks


async def test_cheapest_only_leaves_no_fallback(
    router: Router, policy: TenantPolicy, make_request: MakeRequest, catalog: Catalog
) -> None:
    decision = await router.decide(make_request(ANALYSIS), policy)
    cap = Limit(Window.DAY, 1_000_000, on_exceed=OnExceed.CHEAPEST_ONLY)
    nearly_spent = 1_000_000 - decision.estimated_cost_micros(decision.model) + 1

    cheapest = apply_budget(decision, budget(cap, nearly_spent), catalog)

    assert len(cheapest.ranked) == 1
    assert cheapest.plan == Plan()
    assert decision.plan.fallbacks, "the decision before the budget had fallbacks"
