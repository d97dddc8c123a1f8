"""Online per-model latency statistics (F9, F20), learned from real calls.

Exponentially weighted averages of time to first token, output speed and error rate per model,
fed explicitly by the server after every attempt. The router asks for a model's predicted time
to first token to skip models that would miss a latency target.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelLatency:
    """What the statistics say about one model; None until it has enough samples."""

    ttft_ms: float | None
    tokens_per_second: float | None
    error_rate: float
    samples: int


@dataclass
class _Running:
    ttft_s: float | None = None
    tokens_per_second: float | None = None
    error_rate: float = 0.0
    successes: int = 0
    attempts: int = 0


class LatencyStats:
    """Per-model moving averages. `alpha` weighs the newest sample; a prediction needs at least
    `min_samples` successful calls, so one lucky or unlucky call does not steer routing."""

    def __init__(self, alpha: float = 0.2, min_samples: int = 3) -> None:
        self._alpha = alpha
        self._min_samples = min_samples
        self._models: dict[str, _Running] = {}

    def record_success(
        self, model_id: str, ttft_s: float, output_tokens: int, stream_s: float
    ) -> None:
        """One attempt that answered: its time to first token and its output speed."""
        stats = self._models.setdefault(model_id, _Running())
        stats.ttft_s = self._blend(stats.ttft_s, ttft_s)
        if stream_s > 0 and output_tokens > 1:
            stats.tokens_per_second = self._blend(stats.tokens_per_second, output_tokens / stream_s)
        stats.error_rate = self._blend(stats.error_rate, 0.0)
        stats.successes += 1
        stats.attempts += 1

    def record_failure(self, model_id: str) -> None:
        """One attempt that failed before answering."""
        stats = self._models.setdefault(model_id, _Running())
        stats.error_rate = self._blend(stats.error_rate, 1.0)
        stats.attempts += 1

    def of(self, model_id: str) -> ModelLatency:
        """The model's figures; timings are None until it has `min_samples` successes."""
        stats = self._models.get(model_id, _Running())
        known = stats.successes >= self._min_samples
        return ModelLatency(
            ttft_ms=stats.ttft_s * 1000 if known and stats.ttft_s is not None else None,
            tokens_per_second=stats.tokens_per_second if known else None,
            error_rate=stats.error_rate,
            samples=stats.attempts,
        )

    def _blend(self, average: float | None, sample: float) -> float:
        return sample if average is None else average + self._alpha * (sample - average)
