"""The model catalog (F1)."""

import pytest

from fareway.budgets.pricing import Price
from fareway.routing.catalog import Catalog, ModelSpec

TIERS = ["fast", "balanced", "powerful"]


def spec(id: str, tier: str, output_usd: str = "5", max_output: int = 1_000) -> ModelSpec:
    return ModelSpec(
        id=id,
        provider="sim",
        provider_model_id=id,
        tier=tier,
        price=Price.from_usd_per_mtok("1", output_usd),
        context_window=10_000,
        max_output_tokens=max_output,
        capabilities=frozenset(),
        quality=0.5,
    )


def test_models_are_ordered_by_tier_then_output_price() -> None:
    catalog = Catalog(
        [
            spec("big", "powerful"),
            spec("mid-dear", "balanced", "20"),
            spec("mid", "balanced", "9"),
            spec("small", "fast"),
        ],
        TIERS,
    )

    assert [m.id for m in catalog.models] == ["small", "mid", "mid-dear", "big"]
    assert [catalog.tier_rank(t) for t in TIERS] == [0, 1, 2]


def test_a_generator_of_models_is_read_once_and_kept() -> None:
    catalog = Catalog((spec(i, "fast") for i in ("a", "b")), TIERS)

    assert [m.id for m in catalog.models] == ["a", "b"]
    assert catalog.get("b") is not None


def test_unknown_tier_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown tiers"):
        Catalog([spec("a", "ultra")], TIERS)


def test_lookup_and_largest_output() -> None:
    catalog = Catalog(
        [spec("a", "fast", max_output=500), spec("b", "powerful", max_output=9_000)], TIERS
    )

    assert catalog.get("a") is catalog.models[0]
    assert catalog.get("nope") is None
    assert catalog.has_tier("balanced")
    assert not catalog.has_tier("ultra")
    assert catalog.largest_max_output == 9_000


def test_default_catalog_holds_the_three_claude_tiers(catalog: Catalog) -> None:
    assert [(m.id, m.tier, m.provider_model_id) for m in catalog.models] == [
        ("claude-haiku-4-5", "fast", "claude-haiku-4-5-20251001"),
        ("claude-sonnet-4-6", "balanced", "claude-sonnet-4-6"),
        ("claude-opus-4-6", "powerful", "claude-opus-4-6"),
    ]
    assert [m.price for m in catalog.models] == [
        Price(1_000_000, 5_000_000),
        Price(3_000_000, 15_000_000),
        Price(5_000_000, 25_000_000),
    ]
