"""What the engine's work tells the rest of the process: the attempt spans and metrics, the
latency statistics routing predicts with, and the fallback, escalation, hedge, circuit and
budget events on the request's route span. The engine and its policies call these named
methods; the attribute names live in `fareway.telemetry`.

A circuit's transition (`circuit_changed`, fed by the breaker policy) is traced on the
request's route span, counted and logged (opening as a warning, the way back as info).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import AbstractContextManager

from opentelemetry.trace import Span

from fareway.budgets.ledger import BudgetState
from fareway.core.content import Message
from fareway.providers.base import Provider
from fareway.routing.breaker import CircuitState, Transition
from fareway.routing.catalog import ModelSpec
from fareway.routing.decision import AttemptUsage
from fareway.routing.latency import LatencyStats
from fareway.server.engine.attempt import AttemptResult
from fareway.telemetry.setup import Telemetry
from fareway.telemetry.tracing import (
    mark_failed,
    record_budget_hold,
    record_budget_settle,
    record_circuit_transition,
    record_escalation,
    record_fallback,
    record_hedge,
)

# The request life's logger keeps the name it had before the engine moved here, so logging
# configurations that single out circuit transitions go on working.
log = logging.getLogger(__name__)


class Observer:
    """Feeds telemetry and the latency statistics; one per process."""

    def __init__(
        self, telemetry: Telemetry, latency: LatencyStats, providers: Mapping[str, Provider]
    ) -> None:
        self._telemetry = telemetry
        self._latency = latency
        self._providers = providers

    def attempt_span(
        self,
        route_span: Span,
        model: ModelSpec,
        max_tokens: int,
        messages: tuple[Message, ...],
    ) -> AbstractContextManager[Span]:
        """The attempt's span, a child of the request's route span (a context manager)."""
        provider = self._providers[model.provider]
        return self._telemetry.tracing.attempt_span(
            route_span, model, max_tokens, messages, provider.genai_name, provider.server_address
        )

    def attempt_ended(self, result: AttemptResult, span: Span) -> None:
        """Feed one finished attempt to the latency statistics, its span and the metrics."""
        model = result.model
        first = result.first_token_at
        error = result.error
        usage = result.usage
        if error is not None:
            mark_failed(span, error.kind, str(error))
        if error is not None and first is None:
            self._latency.record_failure(model.id)
        elif first is not None and result.stop_reason:
            self._latency.record_success(
                model.id,
                ttft_s=first - result.started_at,
                output_tokens=usage.output_tokens,
                stream_s=result.ended_at - first,
            )
        self._telemetry.tracing.finish_attempt(
            span,
            response_model=result.response_model or model.provider_model_id,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            stop_reason=result.stop_reason,
            response_id=result.response_id,
            text=result.text,
            tool_calls=result.tool_calls,
        )
        self._telemetry.metrics.record_attempt(
            provider=self._providers[model.provider].genai_name,
            model=model.provider_model_id,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            duration_s=result.ended_at - result.started_at,
            ttft_s=first - result.started_at if first is not None else None,
            error_type=error.kind if error is not None else "",
        )

    def fallback(self, route_span: Span, from_model: str, to_model: str, error: str) -> None:
        """A fallback was taken: a span event and a count."""
        record_fallback(route_span, from_model, to_model, error)
        self._telemetry.metrics.record_fallback(from_model, to_model)

    def escalation(
        self, route_span: Span, from_model: str, to_model: str, confidence: float, reason: str
    ) -> None:
        """A cascade escalated: a span event and a count."""
        record_escalation(route_span, from_model, to_model, confidence, reason)
        self._telemetry.metrics.record_escalation(from_model, to_model)

    def hedge(
        self, route_span: Span, from_model: str, to_model: str, after_ms: int, winner: str
    ) -> None:
        """A request was hedged: a span event and a count (`winner` "" when neither answered)."""
        record_hedge(route_span, from_model, to_model, after_ms, winner)
        self._telemetry.metrics.record_hedge(from_model, to_model, winner)

    def held(self, route_span: Span, amount_micros: int) -> None:
        """The request's hold was taken or re-targeted."""
        record_budget_hold(route_span, amount_micros)

    def settled(
        self, route_span: Span, tenant: str, cost_micros: int, attempts: tuple[AttemptUsage, ...]
    ) -> None:
        """The request's hold was settled: a span event, and each attempt's cost counted."""
        record_budget_settle(route_span, cost_micros)
        for usage in attempts:
            self._telemetry.metrics.record_cost(tenant, usage.model, usage.cost_micros)

    def utilization(self, state: BudgetState) -> None:
        """The tenant's budget use, as its most used window's fraction of the cap."""
        used = [
            (s.spent_micros + s.reserved_micros) / s.limit.cap_micros
            for s in state.limits
            if s.limit.cap_micros
        ]
        if used:
            self._telemetry.metrics.record_budget(state.tenant, max(used))

    def circuit_changed(self, change: Transition | None, route_span: Span) -> None:
        """Trace, count and log a circuit's transition (None: nothing changed)."""
        if change is None:
            return
        record_circuit_transition(route_span, change)
        self._telemetry.metrics.record_circuit_transition(
            change.model, change.before.value, change.after.value
        )
        # Opening is what an operator must hear of; the way back is routine.
        level = logging.WARNING if change.after is CircuitState.OPEN else logging.INFO
        log.log(level, "%s", change.describe())
