"""Fitting the learned router (`fareway train`) on labelled sets, and calibrating its threshold.

**What it learns.** Per prompt, a target that says how much the strong model is needed
(`Recipe.label`):

- `gain`: the strong model's quality less the weak one's, in [-1, 1]: the quantity whose
  ranking maximises the area under RouteLLM's cost-quality curve (send strong first where the
  strong model gains most);
- `weak_fails` (the default): one less the weak model's quality, "the weak model does not
  suffice", which also sends strong the prompts that neither model answers.

`gain` ranks better within the data it was trained on (5-fold on MMLU: APGR 0.655 against
0.593); `weak_fails` carries over to traffic unlike the training set (trained on GSM8K and MMLU,
MT-Bench 0.78 against 0.55), and ranks common requests in the order people expect (a multi-step
word problem above a capital city, a greeting last), which `gain` centred per set does not.
A router is served on traffic it was not trained on, so the default is `weak_fails`;
docs/ROUTING_QUALITY.md has both labels' figures under both protocols.

**How.** Ridge regression of the target on the standardised input (`routing.learned.inputs`:
embedding and cheap features): one linear layer, solved in closed form, so training takes
seconds and is repeatable to the bit. Two choices keep one benchmark's quirks out of the model:

- `balance`: every set weighs the same in the fit, whatever its size, so MMLU's 14,037 prompts
  do not drown GSM8K's 1,307;
- `within`: inputs and targets are centred per set before the fit, so the model learns what
  makes a prompt harder than others *of its own kind*, which is what routing one user's traffic
  needs, and not which benchmark a prompt came from (a between-set difference that says
  nothing about the next user's prompts).

**The penalty.** Heavier penalties help more than bigger models here (a one-hidden-layer
network, random Fourier features and a pairwise ranking loss all scored below ridge regression
in cross-validation), and the best penalty depends on the data: `choose_l2` picks it from
L2_GRID by the APGR of held-out inner folds of the training sets, unless the recipe sets one.

**Calibration.** A logistic curve fitted on the training outcomes (`calibrate`) turns the raw
score into the probability that the strong model is needed, and the model file keeps the
training scores' quantiles (`routing.learned.model`), so a strong share maps straight to a
threshold on that probability. `share_for_budget` finds the largest share
whose mean cost per prompt stays within a budget, on data that records both models' costs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from fareway.evaluation.dataset import FloatArray, LabelledSet
from fareway.evaluation.metrics import evaluate
from fareway.routing.embedding import Embedder
from fareway.routing.learned.inputs import FEATURES
from fareway.routing.learned.model import Layer, LearnedModel, model_inputs

QUANTILES = 101  # training scores kept in the file, at ranks 0, 0.01, ..., 1
L2_GRID = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0)  # the penalties `choose_l2` tries
INNER_FOLDS = 3

Label = Literal["gain", "weak_fails"]


@dataclass(frozen=True)
class Recipe:
    """How to fit (module docstring); the defaults are what the shipped model was made with."""

    label: Label = "weak_fails"
    # The ridge penalty, against the (weighted) mean squared error; None: `choose_l2` picks it.
    l2: float | None = None
    balance: bool = True
    within: bool = True
    embedder: str = "wordllama"
    features: tuple[str, ...] = field(default_factory=lambda: tuple(FEATURES))


@dataclass(frozen=True)
class Prepared:
    """A labelled set with its model inputs, embedded once and reused across fits."""

    data: LabelledSet
    inputs: FloatArray


def prepare(data: LabelledSet, embedder: Embedder, recipe: Recipe) -> Prepared:
    """Embed and measure every prompt of `data` as the served router would (blocking)."""
    return Prepared(data, model_inputs(embedder, data.texts(), recipe.features))


def target(data: LabelledSet, label: Label) -> FloatArray:
    """Per prompt, how much the strong model is needed, by `label` (module docstring)."""
    if label == "gain":
        gain: FloatArray = data.strong_quality() - data.weak_quality()
        return gain
    return needed_strong(data)


def fit(sets: Sequence[Prepared], recipe: Recipe, strong_share: float = 0.5) -> LearnedModel:
    """A learned model fitted on `sets` by `recipe`, calibrated to `strong_share`."""
    if not sets:
        raise ValueError("nothing to train on")
    if recipe.l2 is not None:
        return _fit(sets, recipe, recipe.l2, strong_share, str(recipe.l2))
    l2 = choose_l2(sets, recipe)
    return _fit(sets, recipe, l2, strong_share, f"{l2} (chosen by inner cross-validation)")


def choose_l2(sets: Sequence[Prepared], recipe: Recipe) -> float:
    """The penalty of L2_GRID whose fits score the best mean APGR on held-out inner folds of
    the training sets (each set cut into INNER_FOLDS, the same cut for every penalty)."""
    rng = np.random.default_rng(0)  # a fixed cut: the same data always chooses the same
    folds = [rng.permutation(len(s.data)) for s in sets]
    best, best_score = L2_GRID[0], -np.inf
    for l2 in L2_GRID:
        scores = []
        for fold in range(INNER_FOLDS):
            kept = [
                subset(s, np.sort(np.setdiff1d(o, o[fold::INNER_FOLDS])))
                for s, o in zip(sets, folds, strict=True)
            ]
            model = _fit(kept, recipe, l2, 0.5, str(l2))
            for prepared, order in zip(sets, folds, strict=True):
                held = subset(prepared, order[fold::INNER_FOLDS])
                if held.data.weak_quality().mean() != held.data.strong_quality().mean():
                    scores.append(evaluate(model.strong_scores(held.inputs), held.data).apgr)
        mean = float(np.mean(scores)) if scores else -np.inf
        if mean > best_score:
            best, best_score = l2, mean
    return best


def subset(prepared: Prepared, rows: NDArray[np.intp]) -> Prepared:
    """The prompts of `prepared` at `rows`, with their inputs."""
    prompts = tuple(prepared.data.prompts[int(i)] for i in rows)
    return Prepared(LabelledSet(prepared.data.benchmark, prompts), prepared.inputs[rows])


def _fit(
    sets: Sequence[Prepared], recipe: Recipe, l2: float, strong_share: float, how: str
) -> LearnedModel:
    raw = np.vstack([s.inputs for s in sets])
    w = np.concatenate(
        [np.full(len(s.data), 1.0 / len(s.data) if recipe.balance else 1.0) for s in sets]
    )
    mean = np.average(raw, axis=0, weights=w)
    scale = np.sqrt(np.average((raw - mean) ** 2, axis=0, weights=w))
    scale = np.where(scale > 1e-9, scale, 1.0)
    columns, targets = [], []
    for prepared in sets:
        x = (prepared.inputs - mean) / scale
        y = target(prepared.data, recipe.label)
        if recipe.within:
            x, y = x - x.mean(axis=0), y - y.mean()
        columns.append(x)
        targets.append(y)
    x, y = np.vstack(columns), np.concatenate(targets)
    offset = 0.0 if recipe.within else float(np.average(y, weights=w))
    weighted = x * w[:, None]
    # The penalty grows with the total weight, so l2 weighs against the mean loss per prompt.
    penalty = l2 * w.sum() * np.eye(x.shape[1])
    coefficients = np.linalg.solve(x.T @ weighted + penalty, weighted.T @ (y - offset))
    layer = Layer(coefficients.reshape(-1, 1), np.array([offset]))
    uncalibrated = LearnedModel(
        recipe.embedder,
        recipe.features,
        mean,
        scale,
        (layer,),
        np.array([0.0, 1.0]),
        (1.0, 0.0),
        0.5,
    )
    scores = uncalibrated.raw_scores(raw)
    quantiles = np.quantile(scores, np.linspace(0.0, 1.0, QUANTILES))
    needed = np.concatenate([needed_strong(s.data) for s in sets])
    calibration = calibrate(scores, needed, w)
    about = {
        "trained_on": ", ".join(f"{s.data.benchmark} ({len(s.data)})" for s in sets),
        "label": recipe.label,
        "l2": how,
        "balance": str(recipe.balance),
        "within": str(recipe.within),
    }
    return LearnedModel(
        recipe.embedder,
        recipe.features,
        mean,
        scale,
        (layer,),
        quantiles,
        calibration,
        strong_share,
        about,
    )


def needed_strong(data: LabelledSet) -> FloatArray:
    """Per prompt, whether the strong model was needed: one less the weak model's quality (a
    judge's score counts as a share of a right answer)."""
    needed: FloatArray = 1.0 - data.weak_quality()
    return needed


def calibrate(raw: FloatArray, needed: FloatArray, weights: FloatArray) -> tuple[float, float]:
    """(a, b) of the logistic curve sigmoid(a * raw + b) that best predicts `needed` (weighted
    log-loss, fitted by Newton's method): raw scores as probabilities of needing the strong
    model. A tiny ridge keeps it finite when the scores separate the outcomes perfectly."""
    design = np.column_stack([raw, np.ones_like(raw)])
    coefficients = np.zeros(2)
    for _ in range(50):
        p = 1.0 / (1.0 + np.exp(-(design @ coefficients)))
        gradient = design.T @ (weights * (p - needed)) + 1e-6 * coefficients
        hessian = (design * (weights * p * (1 - p))[:, None]).T @ design + 1e-6 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        coefficients -= step
        if np.abs(step).max() < 1e-10:
            break
    return float(coefficients[0]), float(coefficients[1])


def share_for_budget(
    scores: FloatArray, weak_cost: FloatArray, strong_cost: FloatArray, budget: float
) -> float:
    """The largest share of strong calls, taken highest strong-score first, whose mean cost
    per prompt is at most `budget`; ValueError when even all-weak costs more."""
    order = np.argsort(-scores, kind="stable")
    extra = np.concatenate([[0.0], np.cumsum((strong_cost - weak_cost)[order])])
    mean_cost = (weak_cost.sum() + extra) / len(scores)
    affordable = np.flatnonzero(mean_cost <= budget + 1e-12)
    if len(affordable) == 0:
        raise ValueError(
            f"even routing everything to the weak model costs {mean_cost[0]:.6g} per prompt, "
            f"above the budget {budget:.6g}"
        )
    return float(affordable.max() / len(scores))
