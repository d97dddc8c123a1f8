"""A labelled data set for routing evaluation, as plain immutable data.

Each prompt carries the quality that the weak and the strong model reached on it, on one common
scale in [0, 1]: a correctness flag becomes 0.0 or 1.0, a judge score is rescaled by its loader.
Every metric in `fareway.evaluation.metrics` is a ratio of quality differences (PGR), so any
affine rescaling of the judge's scale leaves the figures unchanged; [0, 1] only keeps the data
comparable across benchmarks. Costs are optional and per call, in whatever unit the source uses
(RouteLLM's data has none: the paper counts the share of strong-model calls instead).

The set is a tuple of `LabelledPrompt`s plus a benchmark name; the metric code works on numpy
arrays, which `weak_quality()`, `strong_quality()` and friends build on demand.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class LabelledPrompt:
    """One prompt and what each model of the pair made of it.

    `weak` and `strong` are qualities in [0, 1]; `weak_cost` and `strong_cost` are the cost of
    answering this prompt with that model, when the source records it.
    """

    text: str
    weak: float
    strong: float
    weak_cost: float | None = None
    strong_cost: float | None = None

    def __post_init__(self) -> None:
        for name in ("weak", "strong"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 <= value <= 1.0):
                raise ValueError(f"{name} quality must lie in [0, 1], got {value!r}")
        for name in ("weak_cost", "strong_cost"):
            value = getattr(self, name)
            if value is not None and not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"{name} must be a finite non-negative number, got {value!r}")


@dataclass(frozen=True, slots=True)
class LabelledSet:
    """A benchmark's prompts with both models' qualities; never empty."""

    benchmark: str
    prompts: tuple[LabelledPrompt, ...]

    def __post_init__(self) -> None:
        if not self.prompts:
            raise ValueError(f"labelled set {self.benchmark!r} has no prompts")

    @classmethod
    def of(cls, benchmark: str, prompts: Iterable[LabelledPrompt]) -> LabelledSet:
        """Build a set from any iterable of prompts."""
        return cls(benchmark, tuple(prompts))

    def __len__(self) -> int:
        return len(self.prompts)

    def texts(self) -> list[str]:
        """The prompts' texts, in order."""
        return [p.text for p in self.prompts]

    def weak_quality(self) -> FloatArray:
        """The weak model's quality per prompt."""
        return np.array([p.weak for p in self.prompts], dtype=np.float64)

    def strong_quality(self) -> FloatArray:
        """The strong model's quality per prompt."""
        return np.array([p.strong for p in self.prompts], dtype=np.float64)

    def has_costs(self) -> bool:
        """Whether every prompt records both models' costs."""
        return all(p.weak_cost is not None and p.strong_cost is not None for p in self.prompts)

    def weak_cost(self) -> FloatArray:
        """The weak model's cost per prompt; ValueError when some prompt lacks it."""
        return _costs(self, "weak_cost")

    def strong_cost(self) -> FloatArray:
        """The strong model's cost per prompt; ValueError when some prompt lacks it."""
        return _costs(self, "strong_cost")


def _costs(data: LabelledSet, field: str) -> FloatArray:
    values: list[float] = []
    for index, prompt in enumerate(data.prompts):
        value = getattr(prompt, field)
        if value is None:
            raise ValueError(f"{data.benchmark}: prompt {index} has no {field}")
        values.append(value)
    return np.array(values, dtype=np.float64)
