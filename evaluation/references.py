"""The reference routers, as strong-score functions over a labelled set.

Each returns one score per prompt, higher meaning "call the strong model", ready for
`fareway.evaluation.metrics`:

- `random_scores`: uniform on [0, 1) from the generator passed in (seed it for repeatable runs).
  Its APGR is 0.5 in expectation, and CPT(x) is x: the floor any router must beat.
- `length_scores`: the prompt's length in characters; longer prompts go strong first. A baseline
  that costs nothing to compute and that a learned router must also beat.
- `oracle_scores`: the strong model's quality gain over the weak one. It routes strong exactly where
  the weak model does worse, and last where the weak model does better, so its curve rises to the
  top early and may end above PGR 1 before falling back to 1 at all-strong: APGR above 1 is its
  mark where the weak model sometimes wins. It reads the labels, so it is a ceiling, not a router.
"""

from __future__ import annotations

import numpy as np

from fareway.evaluation.dataset import FloatArray, LabelledSet


def random_scores(data: LabelledSet, rng: np.random.Generator) -> FloatArray:
    """Uniform random strong-scores, one per prompt."""
    return rng.random(len(data))


def length_scores(data: LabelledSet) -> FloatArray:
    """The length of each prompt in characters."""
    return np.array([len(text) for text in data.texts()], dtype=np.float64)


def oracle_scores(data: LabelledSet) -> FloatArray:
    """Strong quality minus weak quality: positive exactly where the weak model falls short."""
    return data.strong_quality() - data.weak_quality()
