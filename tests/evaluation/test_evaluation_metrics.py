"""The metric code on hand-made sets whose curve, APGR and CPT are worked out by hand."""

import numpy as np
import pytest

from fareway.evaluation.dataset import LabelledPrompt, LabelledSet
from fareway.evaluation.metrics import (
    bootstrap,
    cost_quality_curve,
    cpt,
    evaluate,
    operating_point,
    pgr,
)
from fareway.evaluation.references import oracle_scores

# Eleven prompts scored 0..10: the quantile edges at 0, 0.1, ..., 1 of the scores are then the
# scores themselves (position q * 10 in the sorted list). Edge k sends the prompts scoring >= k to
# the strong model, except the last edge (10), which sends those scoring > 10, i.e. none.
# (pandas' linspace would put edge 3 at 3.0000000000000004; metrics.py computes the positions from
# integers: see its docstring.) So the shares of strong calls are 11/11, 10/11, ..., 2/11 and 0:
# 1/11 is never a point.
SCORES = np.arange(11, dtype=np.float64)


def labelled(pairs: list[tuple[float, float]]) -> LabelledSet:
    return LabelledSet.of("hand", (LabelledPrompt(f"p{i}", w, s) for i, (w, s) in enumerate(pairs)))


def test_a_router_that_ranks_the_only_two_gains_first() -> None:
    # Only prompts 9 and 10 gain from the strong model (weak 0, strong 1); all else is 0 / 0.
    # Gap: strong mean 2/11 - weak mean 0. Points (share, PGR): (0, 0), (2/11, 1), then PGR 1 up
    # to (1, 1). Area: the ramp 0 -> 1 over 2/11 is 1/11, the flat 1 over 9/11 is 9/11: APGR 10/11.
    # CPT(x) interpolates on the ramp: x * 2/11, so CPT(50%) = 1/11 and CPT(80%) = 1.6/11.
    data = labelled([(0.0, 1.0) if i >= 9 else (0.0, 0.0) for i in range(11)])
    curve = cost_quality_curve(SCORES, data.weak_quality(), data.strong_quality())
    assert curve.strong_share.tolist() == pytest.approx([0, *[k / 11 for k in range(2, 12)]])
    summary = evaluate(SCORES, data)
    assert summary.apgr == pytest.approx(10 / 11)
    assert summary.cpt50 == pytest.approx(1 / 11)
    assert summary.cpt80 == pytest.approx(1.6 / 11)


def test_apgr_exceeds_one_when_the_weak_model_wins_where_the_router_keeps_it() -> None:
    # Prompt 0: weak right, strong wrong (gain -1); prompts 8, 9, 10: strong right, weak wrong
    # (gain +1); the rest 0 / 0. Total gain 2. Points: (0, 0); edge 9: (2/11, 2/2 = 1); edge 8:
    # (3/11, 3/2); edges 7..1: PGR 3/2 up to share 10/11; edge 0 adds prompt 0: (1, 2/2 = 1).
    # Trapezoids: 2/11 * (0 + 1)/2 = 1/11; 1/11 * (1 + 1.5)/2 = 1.25/11; 7/11 * 1.5 = 10.5/11;
    # 1/11 * (1.5 + 1)/2 = 1.25/11. APGR = 14/11. CPT(x) again x * 2/11 on the first segment.
    pairs = [(0.0, 0.0)] * 11
    pairs[0] = (1.0, 0.0)
    pairs[8] = pairs[9] = pairs[10] = (0.0, 1.0)
    summary = evaluate(SCORES, labelled(pairs))
    assert summary.apgr == pytest.approx(14 / 11)
    assert summary.cpt50 == pytest.approx(1 / 11)
    assert summary.cpt80 == pytest.approx(1.6 / 11)


def test_the_oracle_on_the_same_set_recovers_the_gap_with_the_three_gains() -> None:
    # Oracle scores = gains: -1, 0 (x7), +1 (x3). Sorted, quantile edge q sits at position 10q:
    # -1 (q=0), 0 (q=0.1..0.7), 1 (q=0.8, 0.9), and 1 strictly (q=1). Points: (1, 1) with all;
    # (10/11, 3/2) without prompt 0; (3/11, 3/2) with the three gains; (0, 0).
    # Area: 3/11 * 1.5/2 = 2.25/11; 7/11 * 1.5 = 10.5/11; 1/11 * 2.5/2 = 1.25/11: APGR 14/11.
    # CPT(x) on the first segment, PGR 0 -> 1.5 over 3/11: x / 1.5 * 3/11 = 2x/11.
    pairs = [(0.0, 0.0)] * 11
    pairs[0] = (1.0, 0.0)
    pairs[8] = pairs[9] = pairs[10] = (0.0, 1.0)
    data = labelled(pairs)
    summary = evaluate(oracle_scores(data), data)
    assert summary.apgr == pytest.approx(14 / 11)
    assert summary.cpt50 == pytest.approx(1 / 11)
    assert summary.cpt80 == pytest.approx(1.6 / 11)


def test_a_router_that_scores_every_prompt_alike_is_a_straight_line() -> None:
    # All edges equal the one score: edges 0..9 (>=) send everyone strong, the last (>) no one.
    # The curve is (0, 0) to (1, 1): APGR 1/2, CPT(x) = x, random's expectation.
    data = labelled([(0.0, 1.0), (1.0, 1.0), (0.0, 0.0), (0.5, 0.75)])
    summary = evaluate(np.zeros(4), data)
    assert (summary.apgr, summary.cpt50, summary.cpt80) == pytest.approx((0.5, 0.5, 0.8))


def test_cpt_is_the_first_crossing_where_the_curve_is_not_monotone() -> None:
    # Scores rank prompt 10 (gain +1) first, then 9 (gain -1), then 8 (gain +1): total gain 1.
    # Points: (0, 0), (2/11, 0: +1 - 1), (3/11, 1), and 1 from there on. PGR 0.5 is first reached
    # between 2/11 and 3/11, halfway: 2.5/11 (np.interp over this curve has no defined answer).
    pairs = [(0.0, 0.0)] * 11
    pairs[10] = (0.0, 1.0)
    pairs[9] = (1.0, 0.0)
    pairs[8] = (0.0, 1.0)
    data = labelled(pairs)
    curve = cost_quality_curve(SCORES, data.weak_quality(), data.strong_quality())
    assert cpt(curve, 0.5) == pytest.approx(2.5 / 11)


def test_cpt_matches_numpy_interp_on_an_increasing_curve() -> None:
    rng = np.random.default_rng(7)
    weak = (rng.random(500) < 0.5).astype(float)
    strong = np.maximum(weak, rng.random(500) < 0.8)  # the weak model never wins: increasing
    scores = strong - weak + rng.normal(0.0, 0.3, 500)
    curve = cost_quality_curve(scores, weak, strong)
    assert np.all(np.diff(curve.quality) >= 0)
    for target in (0.2, 0.5, 0.8):
        level = target * (curve.strong_mean - curve.weak_mean) + curve.weak_mean
        assert cpt(curve, target) == pytest.approx(
            float(np.interp(level, curve.quality, curve.strong_share))
        )


def test_operating_point_and_random_at_the_same_share() -> None:
    # Strong on prompts 8, 9 and 10 of the first set (gains 0, 1, 1 of 2): share 3/11, PGR 1.
    data = labelled([(0.0, 1.0) if i >= 9 else (0.0, 0.0) for i in range(11)])
    point = operating_point(SCORES >= 8, data)
    assert point.strong_share == pytest.approx(3 / 11)
    assert point.pgr == pytest.approx(1.0)
    assert point.random_pgr == pytest.approx(3 / 11)


def test_pgr_is_undefined_when_the_models_tie() -> None:
    with pytest.raises(ValueError, match="same mean quality"):
        pgr(0.5, 0.4, 0.4)


def test_bootstrap_is_seeded_and_brackets_the_estimate() -> None:
    rng = np.random.default_rng(3)
    pairs = [(float(rng.random() < 0.6), float(rng.random() < 0.85)) for _ in range(300)]
    data = labelled(pairs)
    scores = oracle_scores(data) + rng.normal(0.0, 1.0, 300)
    first = bootstrap(scores, data, np.random.default_rng(11), resamples=200)
    again = bootstrap(scores, data, np.random.default_rng(11), resamples=200)
    assert first == again
    assert first.resamples == 200
    for interval in (first.apgr, first.cpt50, first.cpt80):
        assert interval.low <= interval.estimate <= interval.high
        assert interval.low < interval.high


def test_mismatched_inputs_are_refused() -> None:
    data = labelled([(0.0, 1.0), (1.0, 1.0)])
    with pytest.raises(ValueError, match="one non-zero length"):
        evaluate(np.zeros(3), data)
    with pytest.raises(ValueError, match="2 prompts"):
        operating_point(np.array([True]), data)
