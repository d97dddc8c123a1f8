"""Metric instruments (F24) and the helpers that record them.

GenAI client metrics follow the semantic conventions (token usage, operation duration, time to
first chunk); fareway's own count cost, decisions, escalations, fallbacks and circuit breaker
transitions, and gauge each tenant's budget utilisation.
"""

from __future__ import annotations

from opentelemetry.metrics import Meter

from fareway.telemetry import names

_DURATION_BUCKETS = (
    0.01,
    0.02,
    0.04,
    0.08,
    0.16,
    0.32,
    0.64,
    1.28,
    2.56,
    5.12,
    10.24,
    20.48,
    40.96,
    81.92,
)
_TOKEN_BUCKETS = (
    1,
    4,
    16,
    64,
    256,
    1024,
    4096,
    16384,
    65536,
    262144,
    1048576,
    4194304,
    16777216,
    67108864,
)


class Metrics:
    """fareway's instruments on one meter."""

    def __init__(self, meter: Meter) -> None:
        self._tokens = meter.create_histogram(
            names.METRIC_TOKEN_USAGE,
            unit="{token}",
            description="Input and output tokens per model attempt",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        )
        self._duration = meter.create_histogram(
            names.METRIC_OPERATION_DURATION,
            unit="s",
            description="Duration of each model attempt",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self._ttft = meter.create_histogram(
            names.METRIC_TIME_TO_FIRST_CHUNK,
            unit="s",
            description="Time from the start of a model attempt to its first text",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self._cost = meter.create_counter(
            names.METRIC_COST, unit="{micro-USD}", description="Cost billed to tenants"
        )
        self._decisions = meter.create_counter(
            names.METRIC_DECISIONS, unit="{decision}", description="Routing decisions"
        )
        self._escalations = meter.create_counter(
            names.METRIC_ESCALATIONS, unit="{escalation}", description="Cascade escalations"
        )
        self._hedges = meter.create_counter(
            names.METRIC_HEDGES, unit="{hedge}", description="Requests hedged on a second model"
        )
        self._fallbacks = meter.create_counter(
            names.METRIC_FALLBACKS, unit="{fallback}", description="Fallbacks to the next model"
        )
        self._circuit_transitions = meter.create_counter(
            names.METRIC_CIRCUIT_TRANSITIONS,
            unit="{transition}",
            description="Circuit breaker state changes per model",
        )
        self._utilization = meter.create_gauge(
            names.METRIC_BUDGET_UTILIZATION,
            unit="1",
            description="Share of the tenant's tightest cap spent or held",
        )

    def record_attempt(
        self,
        *,
        provider: str,
        model: str,
        input_tokens: int,
        output_tokens: int,
        duration_s: float,
        ttft_s: float | None,
        error_type: str = "",
    ) -> None:
        """One model attempt's tokens and timings."""
        attributes = {
            names.GEN_AI_OPERATION_NAME: names.OPERATION_CHAT,
            names.GEN_AI_PROVIDER_NAME: provider,
            names.GEN_AI_REQUEST_MODEL: model,
        }
        if error_type:
            attributes[names.ERROR_TYPE] = error_type
        self._duration.record(duration_s, attributes)
        if ttft_s is not None:
            self._ttft.record(ttft_s, attributes)
        for token_type, count in (("input", input_tokens), ("output", output_tokens)):
            if count:
                self._tokens.record(count, {**attributes, names.GEN_AI_TOKEN_TYPE: token_type})

    def record_decision(self, strategy: str, model: str, tier: str) -> None:
        """One routing decision."""
        self._decisions.add(1, {names.STRATEGY: strategy, names.MODEL: model, names.TIER: tier})

    def record_fallback(self, from_model: str, to_model: str) -> None:
        """One fallback."""
        self._fallbacks.add(1, {names.FROM_MODEL: from_model, names.TO_MODEL: to_model})

    def record_circuit_transition(self, model: str, before: str, after: str) -> None:
        """A model's circuit moved from state `before` to `after` (closed, open, half_open)."""
        self._circuit_transitions.add(
            1, {names.MODEL: model, names.CIRCUIT_FROM: before, names.CIRCUIT_TO: after}
        )

    def record_escalation(self, from_model: str, to_model: str) -> None:
        """One cascade escalation."""
        self._escalations.add(1, {names.FROM_MODEL: from_model, names.TO_MODEL: to_model})

    def record_hedge(self, from_model: str, to_model: str, winner: str) -> None:
        """One hedge: the late model, the model hedged on, and which of them answered."""
        self._hedges.add(
            1, {names.FROM_MODEL: from_model, names.TO_MODEL: to_model, names.WINNER: winner}
        )

    def record_cost(self, tenant: str, model: str, cost_micros: int) -> None:
        """Cost billed for one attempt."""
        if cost_micros:
            self._cost.add(cost_micros, {names.TENANT: tenant, names.MODEL: model})

    def record_budget(self, tenant: str, utilization: float) -> None:
        """The tenant's tightest cap, as the share spent or held (0 to 1)."""
        self._utilization.set(utilization, {names.TENANT: tenant})
