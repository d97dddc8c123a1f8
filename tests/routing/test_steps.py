"""Per-step routing: the step type picks the tier or model, by configuration."""

from __future__ import annotations

import pytest

from fareway.core.errors import InvalidRequest
from fareway.routing.catalog import Catalog
from fareway.routing.features import extract_features
from fareway.routing.strategies.steps import DEFAULT_STEPS, PerStepConfig
from fareway.routing.strategy import StrategyContext
from tests.routing.conftest import MakeRequest


async def test_a_step_mapped_to_a_model_puts_that_model_first(
    catalog: Catalog, make_request: MakeRequest
) -> None:
    strategy = PerStepConfig(type="per_step", steps={"triage": "claude-sonnet-4-6"}).build(
        "steps", StrategyContext(catalog)
    )
    request = make_request("anything", step_type="triage")

    ranking = await strategy.rank(request, extract_features(request), catalog.models)

    assert ranking.ranked[0].model.id == "claude-sonnet-4-6"
    assert ranking.reason == "step type 'triage' maps to model claude-sonnet-4-6"


@pytest.mark.parametrize("step_type", ["", "dreaming"])
async def test_a_missing_or_unknown_step_type_is_the_callers_error(
    catalog: Catalog, make_request: MakeRequest, step_type: str
) -> None:
    strategy = PerStepConfig(type="per_step").build("steps", StrategyContext(catalog))
    request = make_request("anything", step_type=step_type)

    with pytest.raises(InvalidRequest) as caught:
        await strategy.rank(request, extract_features(request), catalog.models)

    (violation,) = caught.value.violations
    assert violation.field == "hints.step_type"
    assert "known: planning, final_synthesis" in violation.description


def test_the_defaults_follow_the_seed_article() -> None:
    assert DEFAULT_STEPS == {
        "planning": "powerful",
        "final_synthesis": "powerful",
        "tool_call_decision": "balanced",
        "summarization": "balanced",
        "result_classification": "fast",
    }


def test_a_step_target_must_be_a_tier_or_a_model() -> None:
    config = PerStepConfig(type="per_step", steps={"planning": "strongest"})

    problems = config.problems(["fast", "powerful"], ["m-1"])

    assert problems == [
        (("steps", "planning"), "unknown tier or model 'strongest'; known: fast, powerful, m-1")
    ]
