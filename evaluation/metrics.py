"""RouteLLM's routing metrics: the cost-quality curve, PGR, APGR and CPT, with bootstrap intervals.

Definitions (arXiv 2406.18665v4 §3.2, and `routellm/evals/{benchmarks,evaluate}.py`):

- A router gives each prompt a strong-score (higher: more in need of the strong model). At a
  threshold t the prompts scoring >= t go to the strong model, the rest to the weak one.
- Cost is the share of strong calls c in [0, 1]; quality r is the mean quality of the answers.
- PGR = (r(router) - r(weak)) / (r(strong) - r(weak)), the share of the quality gap recovered.
- The curve is taken at RouteLLM's thresholds: the 11 edges of `pd.qcut(scores, 10)`, i.e. the
  quantiles of the scores at 0, 0.1, ..., 1 (linear interpolation, as pandas and `np.quantile`
  by default). Every edge selects `score >= edge`, except the last (the maximum), which
  selects `score > edge`, so the curve always runs from c = 1 (all strong) to c = 0 (none).
- APGR is the trapezoid area under (c, r), less the weak model's flat line, over the area between
  the strong and the weak lines: with c spanning [0, 1] that is the trapezoid area under (c, PGR).
  It may exceed 1 (a router that beats the strong model by using the weak one where it is better).
- CPT(x) is the least share of strong calls at which the curve reaches PGR = x, read off the
  piecewise-linear curve; it is returned as a share in [0, 1] (the paper prints percentages).

Where a choice had to be made:

- Duplicate edges. `pd.qcut` raises on repeated edges unless told otherwise; RouteLLM's comment
  says "including duplicates", and scores with ties (prompt length, the oracle) repeat edges. They
  are kept: a repeated edge adds a repeated point, of zero width under the trapezoid.
- Edge positions. pandas computes quantile q = k/10 from `np.linspace`, whose float noise can
  put an edge a hair above the data value it mathematically equals (q = 0.3 of 0..10 gives
  3.0000000000000004), silently sending that prompt to the weak model. Here the position
  k * (n - 1) / 10 is computed from integers, so such an edge is exactly the data value; the
  curves agree with pandas' everywhere else.
- Ties at a threshold. All prompts scoring exactly the edge go the same way (`>=`), as RouteLLM,
  so with heavy ties the points are not evenly spaced in c.
- CPT on a curve that is not monotone. RouteLLM calls `np.interp(target, quality, share)`, which
  assumes quality increases with share; where it does not (the oracle, or noise on small sets)
  `np.interp` has no defined answer. Here CPT is the first crossing of the target walking up in
  share, which is the paper's definition ("minimum % of calls") and equals `np.interp` whenever the
  curve is increasing.
- The interval. The bootstrap resamples prompts with replacement and recomputes the thresholds,
  the two models' means and every metric on each resample, then takes percentile bounds. A
  resample where both models' means coincide has no PGR and is skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from fareway.evaluation.dataset import FloatArray, LabelledSet

BINS = 10
CPT_TARGETS = (0.5, 0.8)


@dataclass(frozen=True, slots=True)
class Curve:
    """A router's cost-quality curve, sorted by increasing share of strong calls.

    `quality` is the mean quality at each point, `pgr` the same as a share of the gap between
    `weak_mean` and `strong_mean`; `thresholds` are the edges that produced each point.
    """

    thresholds: FloatArray
    strong_share: FloatArray
    quality: FloatArray
    pgr: FloatArray
    weak_mean: float
    strong_mean: float


@dataclass(frozen=True, slots=True)
class Summary:
    """The headline figures of one curve; CPTs are shares of strong calls in [0, 1]."""

    apgr: float
    cpt50: float
    cpt80: float


@dataclass(frozen=True, slots=True)
class Interval:
    """A bootstrap percentile interval around a point estimate."""

    estimate: float
    low: float
    high: float

    def formatted(self, spec: str) -> str:
        """ "estimate [low, high]", each number in the format `spec` (".3f", ".1%")."""
        return f"{self.estimate:{spec}} [{self.low:{spec}}, {self.high:{spec}}]"


@dataclass(frozen=True, slots=True)
class SummaryIntervals:
    """Each headline figure with its bootstrap interval, and how many resamples made them."""

    apgr: Interval
    cpt50: Interval
    cpt80: Interval
    resamples: int


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """Where a tier-picking strategy lands: its share of strong calls and its PGR.

    `random_pgr` is what a random router reaches at the same share: in expectation its quality is
    weak_mean + share * (strong_mean - weak_mean), so its PGR equals the share.
    """

    strong_share: float
    pgr: float
    random_pgr: float


def pgr(quality: float, weak_mean: float, strong_mean: float) -> float:
    """The performance gap recovered by a mean quality; ValueError when the two models tie."""
    gap = strong_mean - weak_mean
    if gap == 0.0:
        raise ValueError("the weak and strong models have the same mean quality: PGR is undefined")
    return (quality - weak_mean) / gap


def cost_quality_curve(
    scores: NDArray[np.floating], weak: FloatArray, strong: FloatArray, bins: int = BINS
) -> Curve:
    """The curve at the `bins + 1` quantile edges of the scores (module docstring)."""
    scores, weak, strong = _checked(scores, weak, strong)
    order = np.argsort(scores, kind="stable")
    ranked = scores[order]
    gain = (strong - weak)[order]
    # suffix[i] = total gain of the prompts ranked i and above, i.e. of calling strong on them.
    suffix = np.concatenate([np.cumsum(gain[::-1])[::-1], [0.0]])
    edges = _quantile_edges(ranked, bins)
    first = np.searchsorted(ranked, edges, side="left")
    first[-1] = np.searchsorted(ranked, edges[-1], side="right")
    n = len(scores)
    weak_mean, strong_mean = float(weak.mean()), float(strong.mean())
    quality = weak_mean + suffix[first] / n
    share = (n - first) / n
    rising = np.argsort(share, kind="stable")
    quality = quality[rising]
    return Curve(
        thresholds=edges[rising],
        strong_share=share[rising].astype(np.float64),
        quality=quality,
        pgr=np.array([pgr(float(q), weak_mean, strong_mean) for q in quality]),
        weak_mean=weak_mean,
        strong_mean=strong_mean,
    )


def apgr(curve: Curve) -> float:
    """Trapezoid area between the curve and the weak line, over that between strong and weak."""
    share, quality = curve.strong_share, curve.quality
    span = float(share[-1] - share[0])
    area = float(np.sum((quality[1:] + quality[:-1]) / 2.0 * np.diff(share)))
    weak_area, strong_area = curve.weak_mean * span, curve.strong_mean * span
    return (area - weak_area) / (strong_area - weak_area)


def cpt(curve: Curve, target: float) -> float:
    """The least share of strong calls at which the curve reaches PGR = target (first crossing)."""
    share, gained = curve.strong_share, curve.pgr
    reached = np.flatnonzero(gained >= target)
    if len(reached) == 0:
        raise ValueError(f"the curve never reaches PGR {target}")
    i = int(reached[0])
    if i == 0:
        return float(share[0])
    below, above = float(gained[i - 1]), float(gained[i])
    step = (target - below) / (above - below)
    return float(share[i - 1] + step * (share[i] - share[i - 1]))


def summarise(curve: Curve) -> Summary:
    """APGR, CPT(50%) and CPT(80%) of one curve."""
    return Summary(apgr(curve), cpt(curve, 0.5), cpt(curve, 0.8))


def evaluate(scores: NDArray[np.floating], data: LabelledSet, bins: int = BINS) -> Summary:
    """APGR, CPT(50%) and CPT(80%) of a router's strong-scores on a labelled set."""
    return summarise(cost_quality_curve(scores, data.weak_quality(), data.strong_quality(), bins))


def bootstrap(
    scores: NDArray[np.floating],
    data: LabelledSet,
    rng: np.random.Generator,
    resamples: int = 1000,
    confidence: float = 0.95,
    bins: int = BINS,
) -> SummaryIntervals:
    """Percentile bootstrap intervals of APGR, CPT(50%) and CPT(80%), resampling prompts."""
    if resamples < 1 or not 0.0 < confidence < 1.0:
        raise ValueError("need at least one resample and a confidence in (0, 1)")
    weak, strong = data.weak_quality(), data.strong_quality()
    scores, weak, strong = _checked(scores, weak, strong)
    point = summarise(cost_quality_curve(scores, weak, strong, bins))
    draws: list[tuple[float, float, float]] = []
    n = len(scores)
    for _ in range(resamples):
        pick = rng.integers(0, n, size=n)
        if weak[pick].mean() == strong[pick].mean():
            continue
        s = summarise(cost_quality_curve(scores[pick], weak[pick], strong[pick], bins))
        draws.append((s.apgr, s.cpt50, s.cpt80))
    if not draws:
        raise ValueError("every resample had equal model means: no interval")
    table = np.array(draws)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(table, [tail, 1.0 - tail], axis=0)
    return SummaryIntervals(
        apgr=Interval(point.apgr, float(low[0]), float(high[0])),
        cpt50=Interval(point.cpt50, float(low[1]), float(high[1])),
        cpt80=Interval(point.cpt80, float(low[2]), float(high[2])),
        resamples=len(draws),
    )


def operating_point(strong_calls: NDArray[np.bool_], data: LabelledSet) -> OperatingPoint:
    """The (share of strong calls, PGR) of a strategy that picked a tier for each prompt."""
    weak, strong = data.weak_quality(), data.strong_quality()
    calls = np.asarray(strong_calls, dtype=bool)
    if calls.shape != weak.shape:
        raise ValueError(f"{calls.shape[0]} decisions for {weak.shape[0]} prompts")
    quality = float(np.where(calls, strong, weak).mean())
    share = float(calls.mean())
    return OperatingPoint(share, pgr(quality, float(weak.mean()), float(strong.mean())), share)


def _quantile_edges(ranked: FloatArray, bins: int) -> FloatArray:
    """Linear-interpolation quantiles of sorted scores at 0, 1/bins, ..., 1.

    The position of quantile k/bins is k * (n - 1) / bins, computed from integers, so an edge that
    is mathematically a data value is exactly that value (module docstring, "Edge positions").
    """
    n = len(ranked)
    lower, remainder = np.divmod(np.arange(bins + 1) * (n - 1), bins)
    upper = np.minimum(lower + 1, n - 1)
    fraction = remainder / bins
    edges: FloatArray = ranked[lower] + fraction * (ranked[upper] - ranked[lower])
    return edges


def _checked(
    scores: NDArray[np.floating], weak: FloatArray, strong: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    s = np.asarray(scores, dtype=np.float64)
    w = np.asarray(weak, dtype=np.float64)
    g = np.asarray(strong, dtype=np.float64)
    if s.ndim != 1 or s.shape != w.shape or s.shape != g.shape or len(s) == 0:
        raise ValueError("scores, weak and strong must be 1-D arrays of one non-zero length")
    if not np.all(np.isfinite(s)):
        raise ValueError("strong-scores must be finite")
    return s, w, g
