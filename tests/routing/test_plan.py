"""The plan on a decision: the router attaches the fallback order (bounded by max_attempts),
the cascade strategy's ladder with the tenant's and the request's overrides, and the hedge; a
decision re-ranked by the budget carries a plan rebuilt from its new order."""

from __future__ import annotations

import pytest

from fareway.budgets.ledger import BudgetState, Limit, LimitState, OnExceed
from fareway.budgets.windows import Window
from fareway.config.schema import FarewayConfig
from fareway.core.errors import FieldViolation, InvalidRequest
from fareway.routing.catalog import Catalog, ModelSpec
from fareway.routing.decision import Candidate, Cascade, CascadeMode, Plan
from fareway.routing.request import Hints, TenantContext
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


# -- the cascade on the plan ---------------------------------------------------------------------

HAIKU, SONNET, OPUS = "claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-6"
SPAM = "is this spam?"


async def test_the_cascade_strategy_puts_its_ladder_on_the_plan_and_explains_it(
    router: Router, policy: TenantPolicy, make_request: MakeRequest
) -> None:
    decision = await router.decide(make_request(SPAM, strategy="cascade"), policy)

    assert decision.model.id == HAIKU
    cascade = decision.plan.cascade
    assert cascade is not None
    assert [m.id for m in cascade.ladder] == [SONNET, OPUS]
    assert (cascade.threshold, cascade.mode) == (0.8, CascadeMode.BUFFERED)
    assert decision.plan.fallbacks == tuple(c.model for c in decision.ranked[1:3])
    assert decision.reason == (
        f"the cheapest eligible tier answers first: {HAIKU} (fast); below confidence 0.8 "
        f"(self-assessment) it escalates to {SONNET}, then {OPUS} (buffered)"
    )
    assert decision.signals["cascade.threshold"] == 0.8


async def test_the_tenant_overrides_the_strategys_threshold_and_mode(
    router: Router, make_request: MakeRequest
) -> None:
    tenant = TenantPolicy("cascade", cascade_threshold=0.6, cascade_mode=CascadeMode.SPECULATIVE)

    decision = await router.decide(make_request(SPAM), tenant)

    cascade = decision.plan.cascade
    assert cascade is not None
    assert (cascade.threshold, cascade.mode) == (0.6, CascadeMode.SPECULATIVE)
    assert decision.signals["cascade.threshold"] == 0.6
    assert "below confidence 0.6" in decision.reason
    assert "(speculative)" in decision.reason


@pytest.mark.parametrize(
    ("tenant_mode", "request_mode", "expected"),
    [
        (None, "speculative", CascadeMode.SPECULATIVE),
        (CascadeMode.SPECULATIVE, "buffered", CascadeMode.BUFFERED),
        (CascadeMode.SPECULATIVE, "", CascadeMode.SPECULATIVE),
        (None, "", CascadeMode.BUFFERED),
    ],
)
async def test_the_requests_mode_beats_the_tenants_which_beats_the_strategys(
    router: Router,
    make_request: MakeRequest,
    tenant_mode: CascadeMode | None,
    request_mode: str,
    expected: CascadeMode,
) -> None:
    tenant = TenantPolicy("cascade", cascade_mode=tenant_mode)

    decision = await router.decide(make_request(SPAM, cascade_mode=request_mode), tenant)

    assert decision.plan.cascade is not None
    assert decision.plan.cascade.mode is expected


async def test_an_unknown_cascade_mode_is_a_field_violation_naming_the_known_ones(
    router: Router, policy: TenantPolicy, make_request: MakeRequest
) -> None:
    found = router.violations(Hints(cascade_mode="eager"), 100, policy)

    assert found == [
        FieldViolation(
            "hints.cascade_mode", "unknown cascade mode 'eager'; known: buffered, speculative"
        )
    ]
    with pytest.raises(InvalidRequest) as caught:
        await router.decide(make_request(SPAM, strategy="cascade", cascade_mode="eager"), policy)
    assert [v.field for v in caught.value.violations] == ["hints.cascade_mode"]


async def test_a_cascade_mode_without_a_cascade_strategy_is_accepted_and_changes_nothing(
    router: Router, policy: TenantPolicy, make_request: MakeRequest
) -> None:
    decision = await router.decide(make_request(SPAM, cascade_mode="speculative"), policy)

    assert decision.plan.cascade is None


@pytest.mark.parametrize("pin", [{"model": SONNET}, {"tier": "balanced"}])
async def test_a_pin_gets_no_cascade(
    router: Router, policy: TenantPolicy, make_request: MakeRequest, pin: dict[str, str]
) -> None:
    request = make_request(SPAM, strategy="cascade", cascade_mode="speculative", **pin)

    decision = await router.decide(request, policy)

    assert decision.strategy == "pin"
    assert decision.plan.cascade is None
    assert "escalates" not in decision.reason


# -- the hedge -----------------------------------------------------------------------------------


def observe(router: Router, model_id: str, ttft_s: float) -> None:
    """Enough answers of `model_id` at `ttft_s` for a prediction."""
    for _ in range(3):
        router.latency.record_success(model_id, ttft_s, 100, 1.0)


async def test_no_latency_target_no_hedge(
    router: Router, policy: TenantPolicy, make_request: MakeRequest
) -> None:
    observe(router, HAIKU, 0.2)

    assert (await router.decide(make_request(ANALYSIS), policy)).plan.hedge is None


async def test_the_hedge_is_the_fastest_observed_other_model(
    router: Router, policy: TenantPolicy, make_request: MakeRequest
) -> None:
    observe(router, HAIKU, 0.9)
    observe(router, SONNET, 0.3)

    decision = await router.decide(make_request(ANALYSIS, latency_target_ms=1500), policy)

    assert decision.model.id == OPUS
    assert decision.plan.hedge is not None
    assert (decision.plan.hedge.model.id, decision.plan.hedge.after_ms) == (SONNET, 1500)
    # The slower one stays as the hedge for when the budget cannot cover the faster.
    assert [m.id for m in decision.plan.hedge.models] == [SONNET, HAIKU]
    assert "hedge" not in decision.reason, "the reason is the strategy's own"


async def test_unobserved_models_come_after_observed_ones_then_the_cheaper_tier(
    router: Router, policy: TenantPolicy, make_request: MakeRequest
) -> None:
    request = make_request(ANALYSIS, latency_target_ms=1500)

    unobserved = await router.decide(request, policy)
    observe(router, SONNET, 0.9)
    observed = await router.decide(request, policy)

    assert unobserved.plan.hedge is not None
    assert unobserved.plan.hedge.model.id == HAIKU
    assert observed.plan.hedge is not None
    assert observed.plan.hedge.model.id == SONNET


async def test_the_tenants_latency_target_plans_a_hedge_when_the_request_has_none(
    router: Router, policy: TenantPolicy, make_request: MakeRequest
) -> None:
    request = make_request(ANALYSIS)

    hedge = (await router.decide(request, policy, TenantContext(latency_target_ms=2000))).plan.hedge

    assert hedge is not None
    assert hedge.after_ms == 2000


async def test_no_hedge_when_the_tenant_turned_hedging_off(
    router: Router, make_request: MakeRequest
) -> None:
    tenant = TenantPolicy("rules", hedging=False)

    decision = await router.decide(make_request(ANALYSIS, latency_target_ms=1500), tenant)

    assert decision.plan.hedge is None


async def test_no_hedge_beside_a_cascade(
    router: Router, policy: TenantPolicy, make_request: MakeRequest
) -> None:
    request = make_request(SPAM, strategy="cascade", latency_target_ms=1500)

    decision = await router.decide(request, policy)

    assert decision.plan.cascade is not None
    assert decision.plan.hedge is None


async def test_no_hedge_for_a_pinned_model(
    router: Router, policy: TenantPolicy, make_request: MakeRequest
) -> None:
    request = make_request(ANALYSIS, model=OPUS, latency_target_ms=1500)

    assert (await router.decide(request, policy)).plan.hedge is None


async def test_a_pinned_tier_hedges_within_the_tier(
    default_config: FarewayConfig, make_request: MakeRequest, policy: TenantPolicy
) -> None:
    spare = default_config.models[2].model_copy(update={"id": "opus-spare", "quality": 0.9})
    catalog = Catalog(
        [*(m.spec() for m in default_config.models), spare.spec()], ("fast", "balanced", "powerful")
    )
    router = Router(catalog, {})
    request = make_request(ANALYSIS, tier="powerful", latency_target_ms=1500)

    decision = await router.decide(request, policy)

    assert [c.model.id for c in decision.ranked] == [OPUS, "opus-spare"]
    assert decision.plan.hedge is not None
    assert decision.plan.hedge.model.id == "opus-spare"
    single = await Router(catalog, {}).decide(
        make_request(SPAM, tier="fast", latency_target_ms=1500), policy
    )
    assert single.plan.hedge is None, "no other model in the tier"


# -- a re-ranked plan ----------------------------------------------------------------------------


def ids(models: tuple[ModelSpec, ...]) -> list[str]:
    return [m.id for m in models]


async def test_a_downgrade_drops_the_new_first_model_from_the_hedge(
    router: Router, policy: TenantPolicy, make_request: MakeRequest, catalog: Catalog
) -> None:
    observe(router, SONNET, 0.3)
    decision = await router.decide(make_request(ANALYSIS, latency_target_ms=1500), policy)
    soft = Limit(Window.DAY, 1_000_000, soft_fraction=0.5)

    downgraded = apply_budget(decision, budget(soft, 900_000), catalog)

    assert decision.plan.hedge is not None
    assert decision.plan.hedge.model.id == SONNET
    assert downgraded.model.id == SONNET
    assert downgraded.plan.hedge is not None
    ranked_others = {c.model for c in downgraded.ranked[1:]}
    assert set(downgraded.plan.hedge.models) <= ranked_others
    assert SONNET not in [m.id for m in downgraded.plan.hedge.models]


async def test_a_downgrade_keeps_a_hedge_on_another_ranked_model(
    router: Router, policy: TenantPolicy, make_request: MakeRequest, catalog: Catalog
) -> None:
    decision = await router.decide(make_request(ANALYSIS, latency_target_ms=1500), policy)
    soft = Limit(Window.DAY, 1_000_000, soft_fraction=0.5)

    downgraded = apply_budget(decision, budget(soft, 900_000), catalog)

    assert downgraded.model.id == SONNET
    assert decision.plan.hedge is not None
    assert downgraded.plan.hedge is not None
    assert downgraded.plan.hedge.model.id == HAIKU
    assert downgraded.plan.hedge.models == tuple(
        m for m in decision.plan.hedge.models if m.id != SONNET
    )


def test_reranking_keeps_only_ladder_steps_stronger_than_the_new_first_model(
    catalog: Catalog,
) -> None:
    haiku, sonnet, opus = catalog.models
    plan = Plan(fallbacks=(sonnet, opus), cascade=Cascade((sonnet, opus), 0.7))

    def rerank(*order: ModelSpec) -> Plan:
        return plan.reranked([Candidate(m) for m in order])

    assert rerank(sonnet, haiku, opus).cascade == Cascade((opus,), 0.7)
    assert rerank(opus, sonnet, haiku).cascade == Cascade((), 0.7)
    assert rerank(haiku, sonnet, opus).cascade == plan.cascade
    assert rerank(haiku, opus).cascade == Cascade((opus,), 0.7), "sonnet is no longer ranked"


async def test_a_soft_limit_leaves_a_cascade_alone_since_it_starts_at_the_cheapest_tier(
    router: Router, policy: TenantPolicy, make_request: MakeRequest, catalog: Catalog
) -> None:
    decision = await router.decide(make_request(SPAM, strategy="cascade"), policy)
    soft = Limit(Window.DAY, 1_000_000, soft_fraction=0.5)

    after = apply_budget(decision, budget(soft, 900_000), catalog)

    assert after.plan == decision.plan
    assert after.plan.cascade is not None
    assert ids(after.plan.cascade.ladder) == [SONNET, OPUS]
