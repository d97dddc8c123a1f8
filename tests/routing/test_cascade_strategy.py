"""The cascade strategy (F4): cheapest tier first, and a ladder of the stronger tiers' best
models, bounded by max_escalations, with the configured threshold, mode and confidence source."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import pytest
from pydantic import ValidationError

from fareway.budgets.pricing import Price
from fareway.routing.catalog import Catalog, ModelSpec
from fareway.routing.decision import Cascade, CascadeMode, ConfidenceSource
from fareway.routing.features import extract_features
from fareway.routing.strategies.cascade import CascadeConfig
from fareway.routing.strategy import Ranking, StrategyContext
from tests.routing.conftest import MakeRequest

TIERS = ("fast", "balanced", "powerful")


def model(
    model_id: str, tier: str, quality: float, input_usd: str = "1", output_usd: str = "5"
) -> ModelSpec:
    return ModelSpec(
        id=model_id,
        provider="sim",
        provider_model_id=model_id,
        tier=tier,
        price=Price.from_usd_per_mtok(Decimal(input_usd), Decimal(output_usd)),
        context_window=100_000,
        max_output_tokens=4_096,
        capabilities=frozenset(),
        quality=quality,
    )


# Two models in each tier; within a tier, the cheaper one is the weaker one.
SMALL = model("small", "fast", 0.55, "0.5", "2")
SMALL_PLUS = model("small-plus", "fast", 0.65, "1", "5")
MID = model("mid", "balanced", 0.8, "3", "15")
MID_PLUS = model("mid-plus", "balanced", 0.84, "4", "20")
BIG = model("big", "powerful", 0.9, "5", "25")
BIG_PLUS = model("big-plus", "powerful", 0.96, "15", "75")
MODELS = (SMALL, SMALL_PLUS, MID, MID_PLUS, BIG, BIG_PLUS)


async def rank(
    make_request: MakeRequest, eligible: Sequence[ModelSpec] = MODELS, **config: object
) -> Ranking:
    strategy = CascadeConfig.model_validate({"type": "cascade", **config}).build(
        "cascade", StrategyContext(Catalog(MODELS, TIERS))
    )
    request = make_request("is this spam?")
    return await strategy.rank(request, extract_features(request), eligible)


async def test_the_cheapest_tier_answers_first_and_the_tail_is_cheapest_tier_first(
    make_request: MakeRequest,
) -> None:
    ranking = await rank(make_request, eligible=list(reversed(MODELS)))

    assert [s.model for s in ranking.ranked] == [SMALL, SMALL_PLUS, MID, MID_PLUS, BIG, BIG_PLUS]
    assert ranking.reason == "the cheapest eligible tier answers first: small (fast)"
    third = pytest.approx(1 / 3)
    assert [s.score for s in ranking.ranked] == [1.0, 1.0, 0.5, 0.5, third, third]


async def test_within_a_tier_equal_cost_goes_to_the_better_model(
    make_request: MakeRequest,
) -> None:
    twin = model("small-twin", "fast", 0.6, "0.5", "2")  # SMALL's price, better quality

    ranking = await rank(make_request, eligible=[SMALL, twin, MID])

    assert [s.model for s in ranking.ranked] == [twin, SMALL, MID]


async def test_the_ladder_is_each_stronger_tiers_best_model(make_request: MakeRequest) -> None:
    ranking = await rank(make_request)

    assert ranking.cascade == Cascade((MID_PLUS, BIG_PLUS))


@pytest.mark.parametrize(
    ("max_escalations", "ladder"),
    [(0, ()), (1, (MID_PLUS,)), (2, (MID_PLUS, BIG_PLUS)), (5, (MID_PLUS, BIG_PLUS))],
)
async def test_max_escalations_bounds_the_ladder(
    make_request: MakeRequest, max_escalations: int, ladder: tuple[ModelSpec, ...]
) -> None:
    ranking = await rank(make_request, max_escalations=max_escalations)

    assert ranking.cascade is not None
    assert ranking.cascade.ladder == ladder


async def test_the_ladder_skips_a_tier_with_no_eligible_model(make_request: MakeRequest) -> None:
    ranking = await rank(make_request, eligible=[SMALL, BIG, BIG_PLUS], max_escalations=1)

    assert ranking.cascade is not None
    assert ranking.cascade.ladder == (BIG_PLUS,)


async def test_the_ladder_starts_above_the_first_models_tier(make_request: MakeRequest) -> None:
    ranking = await rank(make_request, eligible=[MID, MID_PLUS, BIG])

    assert ranking.ranked[0].model is MID
    assert ranking.cascade is not None
    assert ranking.cascade.ladder == (BIG,)


async def test_with_only_one_tier_eligible_the_ladder_is_empty(make_request: MakeRequest) -> None:
    ranking = await rank(make_request, eligible=[SMALL_PLUS, SMALL])

    assert ranking.cascade is not None
    assert ranking.cascade.ladder == ()
    assert ranking.cascade.describe() == "no stronger model to escalate to"


async def test_defaults_threshold_mode_and_source(make_request: MakeRequest) -> None:
    ranking = await rank(make_request)

    assert ranking.cascade is not None
    assert ranking.cascade.threshold == 0.8
    assert ranking.cascade.mode is CascadeMode.BUFFERED
    assert ranking.cascade.source is ConfidenceSource.SELF_ASSESSMENT
    assert ranking.signals == {}, "the router reports the threshold it applies"


async def test_threshold_mode_and_source_pass_through(make_request: MakeRequest) -> None:
    ranking = await rank(
        make_request, threshold=0.55, mode="speculative", confidence="logprobs", max_escalations=1
    )

    assert ranking.cascade == Cascade(
        (MID_PLUS,), 0.55, CascadeMode.SPECULATIVE, ConfidenceSource.LOGPROBS
    )
    assert ranking.cascade is not None
    assert ranking.cascade.describe() == (
        "below confidence 0.55 (logprobs) it escalates to mid-plus (speculative)"
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("threshold", 1.5),
        ("threshold", -0.1),
        ("max_escalations", -1),
        ("mode", "eager"),
        ("confidence", "vibes"),
        ("levels", 3),
    ],
)
def test_config_refuses_out_of_range_and_unknown_values(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        CascadeConfig.model_validate({"type": "cascade", field: value})

    assert caught.value.errors()[0]["loc"] == (field,)


def test_config_refers_to_no_tier_or_model() -> None:
    assert CascadeConfig(type="cascade").problems(TIERS, ["small"]) == []
