"""The learned router (F8): its model file (round trip, refusal of anything else), the
strong-score's calibration, what it reads of a request, and the strategy's decisions and
signals, on the model fareway ships and on small hand-made models."""

from __future__ import annotations

import json
from dataclasses import replace
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from fareway.config.loader import ConfigError, parse_config
from fareway.routing.catalog import Catalog
from fareway.routing.embedders import EmbedderPool
from fareway.routing.features import extract_features
from fareway.routing.learned.inputs import FEATURES, WINDOW_CHARS, embedded_text, features
from fareway.routing.learned.model import (
    DEFAULT_MODEL,
    Layer,
    LearnedModel,
    LearnedModelError,
    load_model,
    model_inputs,
    save_model,
)
from fareway.routing.strategies.learned import (
    STRONG_SCORE_SIGNAL,
    THRESHOLD_SIGNAL,
    LearnedConfig,
    LearnedStrategy,
)
from fareway.routing.strategy import StrategyContext
from tests.routing.conftest import MakeRequest

LENGTH_ONLY = ("log_chars",)


def length_model(embedder: str = "wordllama", dimensions: int = 256) -> LearnedModel:
    """A model whose raw score is the turn's log length: longer turns go strong first."""
    width = dimensions + 1
    weights = np.zeros((width, 1))
    weights[-1, 0] = 1.0
    return LearnedModel(
        embedder,
        LENGTH_ONLY,
        mean=np.zeros(width),
        scale=np.ones(width),
        layers=(Layer(weights, np.zeros(1)),),
        # log(1 + characters) of 0, 20, 150 and 1100 characters or so, at ranks 0, 1/3, 2/3, 1
        quantiles=np.array([0.0, 3.0, 5.0, 7.0]),
        # a probability of 0.5 at 4 (55 characters), rising by e with each unit
        calibration=(1.0, -4.0),
        strong_share=0.5,
        about={"made": "by hand"},
    )


def test_a_model_file_round_trips_and_is_json(tmp_path: Path) -> None:
    model = length_model()
    path = tmp_path / "m.json"
    save_model(model, path)
    document = json.loads(path.read_text())
    assert document["format"] == "fareway.learned/1"
    loaded = load_model(path)
    assert loaded.features == LENGTH_ONLY
    assert loaded.about == {"made": "by hand"}
    inputs = np.zeros((2, 257))
    inputs[:, -1] = [2.0, 6.0]
    assert np.allclose(loaded.strong_scores(inputs), model.strong_scores(inputs))


@pytest.mark.parametrize(
    ("content", "complaint"),
    [
        ("not json", "not JSON"),
        ('{"format": "pickle"}', "fareway.learned/1"),
        ("[1, 2]", "fareway.learned/1"),
    ],
)
def test_anything_but_a_model_file_is_refused_naming_the_file(
    tmp_path: Path, content: str, complaint: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(LearnedModelError, match=complaint) as raised:
        load_model(path)
    assert str(path) in str(raised.value)


def test_shapes_that_disagree_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    save_model(length_model(), path)
    document = json.loads(path.read_text())
    document["mean"] = document["mean"][:-1]
    document["scale"] = document["scale"][:-1]
    path.write_text(json.dumps(document))
    with pytest.raises(LearnedModelError, match="a layer expects 257 inputs, not 256"):
        load_model(path)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LearnedModelError, match="cannot read"):
        load_model(tmp_path / "absent.json")


def test_strong_score_is_the_calibrated_probability() -> None:
    model = length_model()
    inputs = np.zeros((3, 257))
    inputs[:, -1] = [4.0, 5.0, 3.0]
    assert np.allclose(
        model.strong_scores(inputs), [0.5, 1 / (1 + np.exp(-1)), 1 / (1 + np.exp(1))]
    )


def test_the_threshold_is_the_score_at_the_share_of_training_prompts() -> None:
    model = length_model()
    # The top half of the training prompts scored above rank 0.5's raw score, 4: probability 0.5.
    assert model.threshold == pytest.approx(0.5)
    # The top third: raw 5 at rank 2/3.
    assert model.threshold_at(1 / 3) == pytest.approx(1 / (1 + np.exp(-1)))
    assert model.threshold_at(0.0) == 1.0
    assert model.threshold_at(1.0) == 0.0


def test_a_share_of_training_like_traffic_goes_strong() -> None:
    rng = np.random.default_rng(1)
    raw = rng.normal(size=10_000)
    model = replace(length_model(), quantiles=np.quantile(raw, np.linspace(0, 1, 101)))
    for share in (0.1, 0.3, 0.5):
        strong = model.probability(raw) >= model.threshold_at(share)
        assert strong.mean() == pytest.approx(share, abs=0.01)


def test_features_read_a_bounded_window_of_a_huge_turn() -> None:
    huge = "12 + 7 = ? " * 300_000
    window = embedded_text(huge)
    assert len(window) == WINDOW_CHARS + 1
    values = dict(zip(FEATURES, features(huge, tuple(FEATURES)), strict=True))
    assert values["log_chars"] == pytest.approx(np.log1p(len(huge)))  # the whole turn's length
    assert values["digits"] > 0.2
    assert values["symbols"] > 0.1
    assert values["log_questions"] == pytest.approx(np.log1p(window.count("?")))


def test_the_shipped_model_loads_and_names_what_it_reads() -> None:
    model = load_model(DEFAULT_MODEL)
    assert model.embedder == "wordllama"
    assert set(model.features) <= set(FEATURES)
    assert "gsm8k" in model.about["trained_on"]
    assert "mt-bench" not in model.about["trained_on"]


def test_the_shipped_model_scores_within_zero_and_one(embedders: EmbedderPool) -> None:
    model = load_model(DEFAULT_MODEL)
    prompts = ["hi", "What is the capital of France?", "Prove there are infinitely many primes."]
    scores = model.strong_scores(model_inputs(embedders.get("wordllama"), prompts, model.features))
    assert scores.shape == (3,)
    assert np.all((scores >= 0) & (scores <= 1))


def strategy(
    catalog: Catalog, embedders: EmbedderPool, path: Path, **settings: object
) -> LearnedStrategy:
    config = LearnedConfig.model_validate({"type": "learned", "model": str(path), **settings})
    return config.build("learned", StrategyContext(catalog, embedder=embedders.get))


@pytest.mark.parametrize(
    ("prompt", "share", "tier"),
    [
        ("hi", 0.5, "fast"),  # log(3) = 1.1: probability 0.05, below 0.5
        ("a long question, " * 40, 0.5, "powerful"),  # log(681) = 6.5: probability 0.93
        ("hi", 1.0, "powerful"),  # everything strong
        ("a long question, " * 40, 0.0, "fast"),  # nothing strong
    ],
)
async def test_the_strategy_sends_strong_at_or_above_the_threshold(
    catalog: Catalog,
    embedders: EmbedderPool,
    make_request: MakeRequest,
    tmp_path: Path,
    prompt: str,
    share: float,
    tier: str,
) -> None:
    path = tmp_path / "m.json"
    save_model(length_model(), path)
    learned = strategy(catalog, embedders, path, strong_share=share)
    request = make_request(prompt)
    ranking = await learned.rank(request, extract_features(request), list(catalog.models))
    assert ranking.ranked[0].model.tier == tier
    score = ranking.signals[STRONG_SCORE_SIGNAL]
    assert 0.0 <= score <= 1.0
    assert ranking.signals[THRESHOLD_SIGNAL] == pytest.approx(length_model().threshold_at(share))
    assert f"(the top {share:.0%} of its training prompts go strong)" in ranking.reason
    assert f"learned strong-score {score:.2f}" in ranking.reason
    assert len(ranking.ranked) == len(catalog.models)  # ranks every eligible model


def test_configuration_problems_are_named() -> None:
    default = resources.files("fareway.config").joinpath("default.yaml").read_text("utf-8")
    section = """
  mine:
    type: learned
    model: /nonexistent/model.json
    weak: tiny
"""
    text = default.replace("\nstrategies:\n", "\nstrategies:" + section, 1)
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "fareway.yaml")
    message = str(raised.value)
    assert "no learned model file at /nonexistent/model.json" in message
    assert "tiny" in message
