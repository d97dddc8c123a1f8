"""The two protocols a learned router is scored under, so that its figures mean what they say.

- `leave_one_out`: each benchmark is scored by a model trained on the others only, never on
  itself: the protocol RouteLLM's published rows follow (their routers never saw the benchmark
  they are scored on), and the one that says how a router does on someone else's traffic.
- `k_fold`: one benchmark is cut into k folds and each fold is scored by a model trained on the
  other k - 1: the "trained on your own traffic" case, in distribution, reported apart and
  labelled so, since it is not comparable with RouteLLM's rows.

Both return strong-scores (`LearnedModel.strong_scores`), which are comparable across the
models of one protocol, ready for `fareway.evaluation.metrics`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from fareway.evaluation.dataset import FloatArray
from fareway.evaluation.training import Prepared, Recipe, fit, subset

FOLDS = 5


def leave_one_out(
    sets: Mapping[str, Prepared], recipe: Recipe, also: Sequence[Prepared] = ()
) -> dict[str, FloatArray]:
    """For each set, its scores from a model trained on every other set (and on `also`, data
    that is only ever trained on)."""
    scores: dict[str, FloatArray] = {}
    for name, held_out in sets.items():
        others = [s for other, s in sets.items() if other != name]
        model = fit([*others, *also], recipe)
        scores[name] = model.strong_scores(held_out.inputs)
    return scores


def k_fold(
    prepared: Prepared, recipe: Recipe, rng: np.random.Generator, folds: int = FOLDS
) -> FloatArray:
    """Each prompt's score from the model trained on the folds it is not in."""
    n = len(prepared.data)
    if not 2 <= folds <= n:
        raise ValueError(f"need between 2 and {n} folds, got {folds}")
    order = rng.permutation(n)
    scores = np.zeros(n)
    for fold in range(folds):
        held_out = order[fold::folds]
        kept = np.setdiff1d(order, held_out)
        model = fit([subset(prepared, kept)], recipe)
        scores[held_out] = model.strong_scores(prepared.inputs[held_out])
    return scores
