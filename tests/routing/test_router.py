"""The router: hint checks, pins, constraints (F7), and how a decision is priced."""

import pytest

from fareway.budgets.pricing import Price
from fareway.core.errors import InvalidRequest
from fareway.routing.catalog import Catalog, ModelSpec
from fareway.routing.router import Router, TenantPolicy
from fareway.routing.strategies.rules import RulesStrategy

HAIKU, SONNET, OPUS = "claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-6"
ONE_AND_FIVE = Price(1_000_000, 5_000_000)


def model(
    id: str,
    tier: str,
    *,
    context_window: int = 100_000,
    max_output_tokens: int = 4_000,
    capabilities: frozenset[str] = frozenset(),
    price: Price = ONE_AND_FIVE,
) -> ModelSpec:
    return ModelSpec(
        id=id,
        provider="sim",
        provider_model_id=id,
        tier=tier,
        price=price,
        context_window=context_window,
        max_output_tokens=max_output_tokens,
        capabilities=capabilities,
        quality={"fast": 0.6, "balanced": 0.8, "powerful": 0.9}[tier],
    )


def small_router(*models: ModelSpec) -> Router:
    catalog = Catalog(models, ["fast", "balanced", "powerful"])
    return Router(catalog, {"rules": RulesStrategy(catalog, [], default_tier="balanced")})


def field_of(error: pytest.ExceptionInfo[InvalidRequest]) -> str:
    (violation,) = error.value.violations
    return violation.field


# -- pins ---------------------------------------------------------------------------------------


async def test_model_pin_is_obeyed_and_the_others_excluded(
    router: Router, policy: TenantPolicy, make_request
) -> None:
    # The rules would pick the fast tier for this one; the pin wins.
    decision = await router.decide(make_request("classify this: spam?", model=OPUS), policy)

    assert decision.strategy == "pin"
    assert [c.model.id for c in decision.ranked] == [OPUS]
    assert {c.model.id: c.excluded_reason for c in decision.excluded} == {
        HAIKU: "not the pinned model",
        SONNET: "not the pinned model",
    }
    assert OPUS in decision.reason


async def test_tier_pin_is_obeyed(router: Router, policy: TenantPolicy, make_request) -> None:
    decision = await router.decide(make_request("Please analyze this.", tier="fast"), policy)

    assert decision.strategy == "pin"
    assert [c.model.id for c in decision.ranked] == [HAIKU]
    assert {c.model.id for c in decision.excluded} == {SONNET, OPUS}
    assert all(c.excluded_reason == "not in the pinned tier" for c in decision.excluded)


async def test_pinned_model_that_the_tenant_may_not_use_is_refused(
    router: Router, make_request
) -> None:
    policy = TenantPolicy("rules", frozenset({HAIKU}))

    with pytest.raises(InvalidRequest) as error:
        await router.decide(make_request(model=OPUS), policy)

    assert field_of(error) == "hints.model"
    assert "not allowed for tenant 'demo'" in str(error.value)


async def test_strategy_hint_overrides_the_tenant_strategy(catalog: Catalog, make_request) -> None:
    router = Router(
        catalog,
        {
            "rules": RulesStrategy(catalog, [], default_tier="balanced"),
            "cheap": RulesStrategy(catalog, [], default_tier="fast", name="cheap"),
        },
    )

    decision = await router.decide(make_request(strategy="cheap"), TenantPolicy("rules"))

    assert decision.strategy == "cheap"
    assert decision.model.tier == "fast"


# -- hint validation --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hints", "field", "known"),
    [
        ({"strategy": "magic"}, "hints.strategy", ["rules"]),
        ({"model": "gpt-9"}, "hints.model", [HAIKU, SONNET, OPUS]),
        ({"tier": "turbo"}, "hints.tier", ["fast", "balanced", "powerful"]),
    ],
)
async def test_unknown_hints_name_the_field_and_the_known_values(
    router: Router, policy: TenantPolicy, make_request, hints: dict, field: str, known: list[str]
) -> None:
    with pytest.raises(InvalidRequest) as error:
        await router.decide(make_request(**hints), policy)

    assert field_of(error) == field
    message = str(error.value)
    assert next(iter(hints.values())) in message
    assert all(name in message for name in known), message


async def test_max_tokens_beyond_every_model_is_refused(
    router: Router, policy: TenantPolicy, make_request
) -> None:
    with pytest.raises(InvalidRequest) as error:
        await router.decide(make_request(max_tokens=64_001), policy)

    assert field_of(error) == "max_tokens"
    assert "64000" in str(error.value)


async def test_max_tokens_equal_to_the_largest_model_limit_is_fine(
    router: Router, policy: TenantPolicy, make_request
) -> None:
    decision = await router.decide(make_request(max_tokens=64_000), policy)

    assert decision.max_tokens_for(decision.model) == 64_000


# -- constraints --------------------------------------------------------------------------------


async def test_model_whose_context_window_is_too_small_is_excluded(make_request) -> None:
    router = small_router(
        model("tiny", "balanced", context_window=500),
        model("roomy", "powerful", context_window=100_000),
    )
    request = make_request("word " * 200, max_tokens=300)  # ~340 prompt tokens + 300 > 500

    decision = await router.decide(request, TenantPolicy("rules"))

    assert decision.model.id == "roomy"
    (excluded,) = decision.excluded
    assert excluded.model.id == "tiny"
    assert "context window of 500 tokens" in excluded.excluded_reason


async def test_context_check_uses_max_tokens_capped_by_the_model(make_request) -> None:
    # 1,000 prompt-side tokens would not fit with max_tokens 8,000, but this model answers
    # at most 1,000 tokens, so the request does.
    router = small_router(
        model("capped", "balanced", context_window=2_200, max_output_tokens=1_000),
        model("big", "powerful", max_output_tokens=8_000),
    )

    decision = await router.decide(
        make_request("x" * 2_900, max_tokens=8_000), TenantPolicy("rules")
    )

    assert decision.model.id == "capped"
    assert decision.excluded == ()


async def test_model_without_a_required_capability_is_excluded(make_request) -> None:
    router = small_router(
        model("plain", "balanced"),
        model("seeing", "powerful", capabilities=frozenset({"vision", "tools"})),
    )

    decision = await router.decide(
        make_request(required_capabilities=frozenset({"vision"})), TenantPolicy("rules")
    )

    assert [c.model.id for c in decision.ranked] == ["seeing"]
    (excluded,) = decision.excluded
    assert excluded.model.id == "plain"
    assert "lacks capabilities: vision" in excluded.excluded_reason


async def test_tenant_allowed_models_are_respected(router: Router, make_request) -> None:
    policy = TenantPolicy("rules", frozenset({HAIKU, SONNET}))

    decision = await router.decide(make_request("Please analyze this data."), policy)

    assert [c.model.id for c in decision.ranked] == [SONNET, HAIKU]
    (excluded,) = decision.excluded
    assert excluded.model.id == OPUS
    assert excluded.excluded_reason == "not allowed for tenant 'demo'"


async def test_every_model_excluded_says_why_the_last_one_went(make_request) -> None:
    router = small_router(
        model("a", "fast", context_window=50),
        model("b", "powerful", context_window=60),
    )

    with pytest.raises(InvalidRequest) as error:
        await router.decide(make_request("hello " * 40, max_tokens=10), TenantPolicy("rules"))

    message = str(error.value)
    assert "no model can serve this request" in message
    assert "the last, b," in message
    assert "context window of 60 tokens" in message


async def test_tier_pin_with_no_eligible_model_in_that_tier(router: Router, make_request) -> None:
    policy = TenantPolicy("rules", frozenset({HAIKU, SONNET}))

    with pytest.raises(InvalidRequest) as error:
        await router.decide(make_request(tier="powerful"), policy)

    assert field_of(error) == "hints.tier"
    assert OPUS in str(error.value)
    assert "not allowed" in str(error.value)


# -- max_tokens and cost ------------------------------------------------------------------------


async def test_max_tokens_is_capped_per_model(make_request) -> None:
    router = small_router(
        model("short", "fast", max_output_tokens=1_000),
        model("long", "powerful", max_output_tokens=8_000),
    )

    decision = await router.decide(make_request(max_tokens=5_000), TenantPolicy("rules"))

    by_id = {c.model.id: c.model for c in decision.ranked}
    assert decision.max_tokens_for(by_id["short"]) == 1_000
    assert decision.max_tokens_for(by_id["long"]) == 5_000


async def test_estimated_cost_is_price_times_prompt_estimate_and_capped_max_tokens(
    make_request,
) -> None:
    price = Price.from_usd_per_mtok("3", "15")
    router = small_router(
        model("m", "balanced", max_output_tokens=2_000, price=price),
        model("big", "powerful", max_output_tokens=8_000),
    )

    decision = await router.decide(
        make_request("What is 2 + 2?", max_tokens=4_000), TenantPolicy("rules")
    )

    # "What is 2 + 2?" is 14 bytes -> 5 tokens, plus 4 for the message: 9 prompt tokens.
    assert decision.prompt_tokens == 9
    assert decision.model.id == "m"
    assert decision.estimated_cost_micros(decision.model) == price.cost_micros(9, 2_000)
    assert decision.estimated_cost_micros(decision.model) == 9 * 3 + 2_000 * 15


async def test_estimated_cost_on_the_default_catalog(
    router: Router, policy: TenantPolicy, make_request
) -> None:
    decision = await router.decide(make_request("Please analyze this.", max_tokens=1_000), policy)

    opus = decision.model
    assert opus.id == OPUS
    # $5 / $25 per Mtok: prompt tokens x 5 + 1,000 x 25 micro-USD.
    assert decision.estimated_cost_micros(opus) == decision.prompt_tokens * 5 + 25_000
