"""Per-model latency statistics: moving averages, and no prediction from too few samples."""

from __future__ import annotations

import pytest

from fareway.routing.latency import LatencyStats


def test_no_prediction_until_enough_successes() -> None:
    stats = LatencyStats(min_samples=3)
    for _ in range(2):
        stats.record_success("m", ttft_s=1.0, output_tokens=50, stream_s=1.0)

    assert stats.of("m").ttft_ms is None
    stats.record_success("m", ttft_s=1.0, output_tokens=50, stream_s=1.0)
    assert stats.of("m").ttft_ms == pytest.approx(1000)
    assert stats.of("m").tokens_per_second == pytest.approx(50)


def test_the_average_moves_towards_new_samples_by_alpha() -> None:
    stats = LatencyStats(alpha=0.5, min_samples=1)
    stats.record_success("m", ttft_s=1.0, output_tokens=10, stream_s=1.0)
    stats.record_success("m", ttft_s=3.0, output_tokens=10, stream_s=1.0)

    assert stats.of("m").ttft_ms == pytest.approx(2000)


def test_failures_raise_the_error_rate_and_successes_lower_it() -> None:
    stats = LatencyStats(alpha=0.5)
    stats.record_failure("m")
    assert stats.of("m").error_rate == pytest.approx(0.5)
    stats.record_success("m", ttft_s=1.0, output_tokens=10, stream_s=1.0)
    assert stats.of("m").error_rate == pytest.approx(0.25)
    assert stats.of("m").samples == 2


def test_an_unknown_model_has_no_figures() -> None:
    unknown = LatencyStats().of("never-called")
    assert (unknown.ttft_ms, unknown.tokens_per_second, unknown.samples) == (None, None, 0)
