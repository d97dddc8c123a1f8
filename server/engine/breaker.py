"""The breaker policy (F10) as the engine applies it: every attempt is first admitted by the
model's circuit (`admit`; a circuit that opened since the decision refuses it, and the engine
treats that like a failure before the first token), and every finished attempt is fed back
(`learn`). The circuit itself, its counting and its states, is `routing.breaker`.

What counts: a failure before the first token, except when the call's own deadline had run out
(the caller's time says nothing of the model's health); a first token is a success; a
cancelled attempt (the caller left, a hedge lost) counts for nothing. A transition is handed to
`on_change`, which traces, counts and logs it.
"""

from __future__ import annotations

from collections.abc import Callable

from opentelemetry.trace import Span

from fareway.routing.breaker import Admission, CircuitBreaker, Transition, outcome_of
from fareway.routing.catalog import ModelSpec
from fareway.server.engine.attempt import AttemptResult

OnChange = Callable[[Transition | None, Span], None]
"""Reports a circuit's transition (None: nothing changed) on the request's route span."""


class BreakerPolicy:
    """Admits attempts and learns from them; without a breaker every attempt is admitted."""

    def __init__(self, breaker: CircuitBreaker | None, on_change: OnChange) -> None:
        self._breaker = breaker
        self._on_change = on_change

    def admit(self, model: ModelSpec, route_span: Span) -> Admission:
        """May an attempt on the model start now?"""
        if self._breaker is None:
            return Admission(allowed=True)
        admission = self._breaker.admit(model.id)
        self._on_change(admission.transition, route_span)
        return admission

    def learn(self, result: AttemptResult, route_span: Span) -> None:
        """Feed one finished attempt to its model's circuit."""
        if self._breaker is None:
            return
        counted = None if result.out_of_time else result.error
        answered = result.first_token_at is not None or bool(result.stop_reason)
        change = self._breaker.record(
            result.model.id,
            outcome_of(answered, counted),
            probe=result.probe,
            retry_after_s=counted.retry_after_s if counted is not None else None,
            cause=counted.describe() if counted is not None else "",
        )
        self._on_change(change, route_span)
