"""Fitting the learned router and scoring a recipe: what the fit learns from (within each set,
every set weighing the same), budget calibration, and protocols that never score a prompt with
a model that saw it. Inputs are made by hand here, so each test knows what there is to learn."""

from __future__ import annotations

import numpy as np
import pytest

from fareway.evaluation.dataset import LabelledPrompt, LabelledSet
from fareway.evaluation.metrics import evaluate
from fareway.evaluation.protocols import k_fold, leave_one_out
from fareway.evaluation.training import (
    L2_GRID,
    Prepared,
    Recipe,
    choose_l2,
    fit,
    needed_strong,
    share_for_budget,
    target,
)

# Inputs of two columns: a set marker and a difficulty, and no features by name.
RECIPE = Recipe(l2=1e-3, features=())


def labelled(name: str, gains: np.ndarray) -> LabelledSet:
    """Binary correctness whose strong-minus-weak gain per prompt is `gains` (0 or 1)."""
    prompts = [LabelledPrompt(f"{name} {i}", 0.0 if g else 1.0, 1.0) for i, g in enumerate(gains)]
    return LabelledSet.of(name, prompts)


def difficulty_set(
    name: str, rng: np.random.Generator, n: int = 400, base: float = 0.0
) -> Prepared:
    """Gain is likelier the harder the prompt (column 1); column 0 marks the set with `base`."""
    hard = rng.normal(size=n)
    gains = (rng.random(n) < 1 / (1 + np.exp(-2 * hard))).astype(float)
    inputs = np.column_stack([np.full(n, base), hard])
    return Prepared(labelled(name, gains), inputs)


def test_target_is_the_gain_or_the_weak_models_failure() -> None:
    data = LabelledSet.of(
        "t",
        [
            LabelledPrompt("a", 0.0, 1.0),
            LabelledPrompt("b", 0.0, 0.0),
            LabelledPrompt("c", 1.0, 1.0),
        ],
    )
    assert target(data, "gain").tolist() == [1.0, 0.0, 0.0]
    assert target(data, "weak_fails").tolist() == [1.0, 1.0, 0.0]


def test_the_fit_ranks_by_what_predicts_the_gain() -> None:
    rng = np.random.default_rng(0)
    train, test = difficulty_set("a", rng), difficulty_set("a", rng)
    model = fit([train], RECIPE)
    assert evaluate(model.strong_scores(test.inputs), test.data).apgr > 0.65


def test_within_ignores_which_set_a_prompt_came_from() -> None:
    """Set b is easy for the weak model throughout and marked by column 0; learning the marker
    would say nothing about the next user's prompts, so `within` learns difficulty only."""
    rng = np.random.default_rng(1)
    hard = difficulty_set("a", rng, base=1.0)
    easy = Prepared(
        labelled("b", np.zeros(400)), np.column_stack([np.zeros(400), rng.normal(size=400)])
    )
    within = fit([hard, easy], RECIPE).layers[0].weights[:, 0]
    across = fit([hard, easy], Recipe(l2=1e-3, features=(), within=False)).layers[0].weights[:, 0]
    assert abs(within[0]) < 0.01 < within[1]
    assert across[0] > 0.1  # without it, the marker carries the between-set difference


def test_balance_weighs_every_set_the_same_whatever_its_size() -> None:
    rng = np.random.default_rng(2)
    a, b = difficulty_set("a", rng), difficulty_set("b", rng, n=100)
    doubled = Prepared(LabelledSet("a", a.data.prompts * 2), np.vstack([a.inputs, a.inputs]))
    once = fit([a, b], RECIPE).layers[0].weights
    twice = fit([doubled, b], RECIPE).layers[0].weights
    assert np.allclose(once, twice, atol=1e-6)


def test_a_budget_buys_the_largest_share_that_fits() -> None:
    scores = np.array([0.9, 0.1, 0.5, 0.7])
    weak, strong = np.full(4, 1.0), np.full(4, 11.0)
    # All weak: 1 a prompt; each strong call adds 10 / 4 = 2.5 to the mean.
    assert share_for_budget(scores, weak, strong, 1.0) == 0.0
    assert share_for_budget(scores, weak, strong, 6.0) == 0.5
    assert share_for_budget(scores, weak, strong, 11.0) == 1.0
    with pytest.raises(ValueError, match="even routing everything to the weak model"):
        share_for_budget(scores, weak, strong, 0.5)


def test_k_fold_scores_noise_as_noise() -> None:
    """On labels that nothing predicts, a model scored on its own training prompts looks good
    (it fits the noise); scored on folds it never saw, it is random, as it should be."""
    rng = np.random.default_rng(3)
    n = 600
    inputs = rng.normal(size=(n, 150))
    data = labelled("noise", (rng.random(n) < 0.5).astype(float))
    prepared = Prepared(data, inputs)
    in_sample = evaluate(fit([prepared], RECIPE).strong_scores(inputs), data).apgr
    held_out = evaluate(k_fold(prepared, RECIPE, np.random.default_rng(0)), data).apgr
    assert in_sample > 0.6
    assert abs(held_out - 0.5) < 0.06


def test_leave_one_out_never_trains_on_the_set_it_scores() -> None:
    """Sets a and b gain where column 1 is high, set c where it is low: trained on a and b, c is
    ranked backwards, which a model that had seen c could not do."""
    rng = np.random.default_rng(4)
    a, b = difficulty_set("a", rng), difficulty_set("b", rng)
    flipped = difficulty_set("c", rng)
    c = Prepared(flipped.data, flipped.inputs * np.array([1.0, -1.0]))
    scores = leave_one_out({"a": a, "b": b, "c": c}, RECIPE)
    assert sorted(scores) == ["a", "b", "c"]
    assert evaluate(scores["c"], c.data).apgr < 0.4
    assert evaluate(fit([c], RECIPE).strong_scores(c.inputs), c.data).apgr > 0.6


def test_nothing_to_train_on_is_refused() -> None:
    with pytest.raises(ValueError, match="nothing to train on"):
        fit([], RECIPE)


def test_without_a_penalty_one_is_chosen_on_held_out_folds_and_recorded() -> None:
    """One column predicts the gain among 150 that are noise, on 300 prompts: a light penalty
    fits the noise, so cross-validation chooses a heavier one, and the file says so."""
    rng = np.random.default_rng(5)
    signal = difficulty_set("a", rng, n=300)
    inputs = np.column_stack([signal.inputs, rng.normal(size=(300, 150))])
    prepared = Prepared(signal.data, inputs)
    recipe = Recipe(features=())

    chosen = choose_l2([prepared], recipe)
    model = fit([prepared], recipe)

    assert chosen in L2_GRID
    assert chosen > L2_GRID[0]
    assert model.about["l2"] == f"{chosen} (chosen by inner cross-validation)"
    assert fit([prepared], Recipe(l2=0.5, features=())).about["l2"] == "0.5"


def test_the_strong_score_is_a_calibrated_probability() -> None:
    """Among prompts given a strong-score near p, about a share p needed the strong model."""
    rng = np.random.default_rng(6)
    train, test = difficulty_set("a", rng, n=4000), difficulty_set("a", rng, n=4000)
    model = fit([train], RECIPE)
    probability = model.strong_scores(test.inputs)
    needed = needed_strong(test.data)
    assert probability.mean() == pytest.approx(needed.mean(), abs=0.02)
    for low, high in ((0.1, 0.3), (0.4, 0.6), (0.7, 0.9)):
        band = (probability >= low) & (probability < high)
        assert needed[band].mean() == pytest.approx((low + high) / 2, abs=0.06)
