"""One request's life after routing: hold budget, try candidates in order, stream, settle.

Knows nothing of gRPC: it yields plain events that the servicer turns into protobuf. The
guarantee it keeps: whatever happens (success, provider failure, client cancellation,
deadline), the hold is settled exactly once, to what the attempts actually used. While text
streams, the usage so far is checkpointed into the hold (`checkpoints.py`), so a process that
dies mid-stream still has that much billed.

With the ledger unreachable nothing streams unbilled: admission, the hold and the budget
check come before the first event and raise LedgerUnavailable; a settle that fails after the
text went out is retried in the background by the ledger wrapper (`ledger_health.py`).

Each attempt is first admitted by the circuit breaker (`routing.breaker`): a candidate whose
circuit opened since the decision is skipped like a failure before its first token, with a
`fallback`. An attempt's first token must come within its provider's `first_token_timeout_s`.
Every finished attempt is fed to the breaker in `_observe`; a transition it causes is traced on
the request's route span, counted and logged.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from types import MappingProxyType

from opentelemetry.trace import Span

from fareway.budgets.ledger import BudgetState, Ledger, RateLimit
from fareway.core.clock import Clock
from fareway.core.errors import (
    AllCandidatesFailed,
    BudgetExceeded,
    LedgerUnavailable,
    ProviderError,
    StreamBroken,
)
from fareway.providers.base import Provider
from fareway.routing.breaker import CircuitBreaker, CircuitState, Transition, outcome_of
from fareway.routing.catalog import ModelSpec
from fareway.routing.decision import Decision
from fareway.routing.latency import LatencyStats
from fareway.server.attempt import Attempt, AttemptUsage
from fareway.server.checkpoints import Checkpoints
from fareway.telemetry import names
from fareway.telemetry.setup import Telemetry
from fareway.telemetry.tracing import mark_failed, record_circuit_transition, record_event

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Routed:
    """The decision, with what the tenant may still spend once this request's hold is taken."""

    decision: Decision
    budget_remaining_micros: int | None


@dataclass(frozen=True)
class Delta:
    """Answer text."""

    text: str


@dataclass(frozen=True)
class FallbackTaken:
    """An attempt failed before its first token; the next candidate takes over."""

    from_model: str
    to_model: str
    error: str


@dataclass(frozen=True)
class Escalated:
    """A cascade found an answer not good enough and moved on to a stronger model."""

    from_model: str
    to_model: str
    reason: str
    confidence: float
    """The confidence that was below the threshold."""
    discard_previous: bool
    """True when the text already sent belongs to the abandoned answer."""


@dataclass(frozen=True)
class Hedged:
    """The first token was late, so the request also ran on another model; `winner` answers,
    the other was cancelled (and is billed for what it used)."""

    from_model: str
    to_model: str
    after_ms: int
    """When the hedge started, in milliseconds after the first attempt did."""
    winner: str


@dataclass(frozen=True)
class Billed:
    """One attempt's usage, charged to the tenant."""

    usage: AttemptUsage


@dataclass(frozen=True)
class Finished:
    """The answer is complete."""

    stop_reason: str
    total: AttemptUsage
    ttft_ms: int
    signals: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    """What the engine learned after the decision went out (e.g. "cascade.confidence")."""


GenerationEvent = Routed | Delta | Escalated | FallbackTaken | Hedged | Billed | Finished


class Generation:
    """Runs decided requests against the providers, holding budget for them meanwhile."""

    def __init__(
        self,
        providers: Mapping[str, Provider],
        ledger: Ledger,
        clock: Clock,
        max_attempts: int,
        latency: LatencyStats,
        telemetry: Telemetry,
        *,
        checkpoint_interval_s: float = 1.0,
        breaker: CircuitBreaker | None = None,
        first_token_timeouts: Mapping[str, float | None] | None = None,
    ) -> None:
        """`breaker` (None: no circuit breaking) admits each attempt and learns its outcome;
        `first_token_timeouts` limits, by provider name, how long an attempt may wait for its
        first token (a provider not named has no such limit)."""
        self._providers = providers
        self._ledger = ledger
        self._clock = clock
        self._max_attempts = max_attempts
        self._latency = latency
        self._telemetry = telemetry
        self._checkpoint_interval_s = checkpoint_interval_s
        self._breaker = breaker
        self._first_token_timeouts = dict(first_token_timeouts or {})

    async def run(
        self,
        decision: Decision,
        started_at: float,
        rate: RateLimit,
        span: Span,
        timeout_s: float | None = None,
    ) -> AsyncGenerator[GenerationEvent, None]:
        """Yield Routed, then the answer's events, ending with Finished.

        Raises RateLimitExceeded or BudgetExceeded before anything is yielded,
        AllCandidatesFailed when no candidate produced a token, and StreamBroken when a
        provider failed mid-answer. `started_at` is the request's arrival on the injected
        clock's monotonic scale; `span` is the request's route span, parent of the attempts.
        """
        request = decision.request
        await self._ledger.admit(request.tenant, rate)
        bill = _Bill(request.tenant, uuid.uuid4().hex, span)
        await self._hold(bill, decision.estimated_cost_micros(decision.model))
        checkpoints = Checkpoints(
            self._ledger, self._clock, bill.tenant, bill.hold_id, self._checkpoint_interval_s
        )
        try:
            state = await self._ledger.state(request.tenant)
            self._record_utilization(state)
            yield Routed(decision, state.remaining_micros)
            # aclosing: when the caller goes away mid-stream, the attempt must be closed (and
            # charged) before the finally below settles the bill.
            attempts = self._attempts(decision, bill, checkpoints, started_at, timeout_s)
            async with aclosing(attempts) as events:
                async for event in events:
                    yield event
                    if isinstance(event, Finished) and request.latency_target_ms:
                        await self._record_latency(request.tenant, event, request.latency_target_ms)
        finally:
            # Shielded: a second cancellation (server shutdown, say) must not cut the settle
            # short, or the tenant's hold would stay until its time-to-live. The checkpoint in
            # flight ends first: the settle is the last word on the hold.
            settling = asyncio.ensure_future(self._settle(bill, checkpoints))
            try:
                await asyncio.shield(settling)
            except asyncio.CancelledError:
                await settling
                raise

    async def _attempts(
        self,
        decision: Decision,
        bill: _Bill,
        checkpoints: Checkpoints,
        started_at: float,
        timeout_s: float | None,
    ) -> AsyncGenerator[GenerationEvent, None]:
        """Try the ranked candidates in turn (the first already held for) until one answers."""
        queue = [c.model for c in decision.ranked[1 : self._max_attempts]]
        model = decision.model
        for tried in range(1, self._max_attempts + 1):
            attempt = Attempt(model, decision, self._clock)
            async with aclosing(self._try(attempt, bill, checkpoints, timeout_s)) as pieces:
                async for text in pieces:
                    yield Delta(text)
            usage = bill.charge(attempt)
            error = attempt.error
            if error is None:
                yield Billed(usage)
                ttft_s = (attempt.first_token_at or self._clock.monotonic()) - started_at
                yield Finished(attempt.stop_reason, bill.total(), round(ttft_s * 1000))
                return
            if usage.input_tokens or usage.output_tokens:
                yield Billed(usage)
            next_model = await self._hold_for_next(decision, queue, bill)
            if next_model is None:
                raise AllCandidatesFailed(error, tried) from error
            record_event(
                bill.span,
                names.EVENT_FALLBACK,
                {
                    names.FROM_MODEL: model.id,
                    names.TO_MODEL: next_model.id,
                    names.ERROR: error.describe(),
                },
            )
            self._telemetry.metrics.record_fallback(model.id, next_model.id)
            yield FallbackTaken(model.id, next_model.id, error.describe())
            model = next_model
        raise AssertionError("the loop returns or raises on its last attempt")

    async def _try(
        self,
        attempt: Attempt,
        bill: _Bill,
        checkpoints: Checkpoints,
        timeout_s: float | None,
    ) -> AsyncGenerator[str, None]:
        """Stream one attempt under its span. A failure before the first token is kept as
        `attempt.error` (the caller falls back); after it, it is raised as StreamBroken.
        However it ends (cancellation included), the attempt is charged and observed. A model
        whose circuit opened since the decision is not tried: its CircuitOpen is the error."""
        model = attempt.model
        if self._breaker is not None:
            admission = self._breaker.admit(model.id)
            self._circuit_changed(admission.transition, bill.span)
            if admission.refusal is not None:
                attempt.error = admission.refusal
                return
            attempt.probe = admission.probe
        provider = self._providers[model.provider]
        first_token_timeout_s = self._first_token_timeouts.get(model.provider)
        tracing = self._telemetry.tracing
        with tracing.attempt_span(
            bill.span,
            model,
            attempt.max_tokens,
            attempt.messages,
            provider.genai_name,
            provider.server_address,
        ) as span:
            error_type = ""
            try:
                stream = attempt.stream(provider, timeout_s, first_token_timeout_s)
                async with aclosing(stream) as text:
                    async for piece in text:
                        yield piece
                        checkpoints.tick(lambda: bill.so_far(attempt))
            except ProviderError as error:
                error.model = model.id
                error_type = error.kind
                mark_failed(span, error.kind, str(error))
                if attempt.first_token_at is not None:
                    raise StreamBroken(error) from error
                attempt.error = error
            finally:
                usage = bill.charge(attempt)
                self._observe(attempt, usage, span, error_type, bill.span)

    def _observe(
        self, attempt: Attempt, usage: AttemptUsage, span: Span, error_type: str, route_span: Span
    ) -> None:
        """Feed one finished attempt to the latency statistics, the circuit breaker, the span
        and the metrics; a circuit it moved is recorded on the request's route span."""
        model = attempt.model
        now = self._clock.monotonic()
        first = attempt.first_token_at
        if self._breaker is not None:
            error = None if attempt.out_of_time else attempt.error
            change = self._breaker.record(
                model.id,
                outcome_of(first is not None or bool(attempt.stop_reason), error),
                probe=attempt.probe,
                retry_after_s=error.retry_after_s if error is not None else None,
                cause=error.describe() if error is not None else "",
            )
            self._circuit_changed(change, route_span)
        if error_type and first is None:
            self._latency.record_failure(model.id)
        elif first is not None and attempt.stop_reason:
            self._latency.record_success(
                model.id,
                ttft_s=first - attempt.started_at,
                output_tokens=usage.output_tokens,
                stream_s=now - first,
            )
        self._telemetry.tracing.finish_attempt(
            span,
            response_model=attempt.response_model or model.provider_model_id,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            stop_reason=attempt.stop_reason,
            response_id=attempt.response_id,
            text=attempt.text,
        )
        self._telemetry.metrics.record_attempt(
            provider=self._providers[model.provider].genai_name,
            model=model.provider_model_id,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            duration_s=now - attempt.started_at,
            ttft_s=first - attempt.started_at if first is not None else None,
            error_type=error_type,
        )

    def _circuit_changed(self, change: Transition | None, route_span: Span) -> None:
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

    async def _hold_for_next(
        self, decision: Decision, queue: list[ModelSpec], bill: _Bill
    ) -> ModelSpec | None:
        """The next candidate whose attempt the budget can still cover, with the hold raised to
        what was billed so far plus its estimate; None when no candidate is left or affordable."""
        while queue:
            model = queue.pop(0)
            try:
                await self._hold(bill, bill.cost_micros + decision.estimated_cost_micros(model))
            except BudgetExceeded:
                continue
            return model
        return None

    def _record_utilization(self, state: BudgetState) -> None:
        used = [
            (s.spent_micros + s.reserved_micros) / s.limit.cap_micros
            for s in state.limits
            if s.limit.cap_micros
        ]
        if used:
            self._telemetry.metrics.record_budget(state.tenant, max(used))

    async def _hold(self, bill: _Bill, amount_micros: int) -> None:
        await self._ledger.hold(bill.tenant, bill.hold_id, amount_micros)
        record_event(bill.span, names.EVENT_BUDGET_HOLD, {names.AMOUNT: amount_micros})

    async def _record_latency(self, tenant: str, finished: Finished, target_ms: int) -> None:
        """Count the request towards the latency attainment; an unreachable ledger loses this
        one count rather than fail an answer that is already complete."""
        try:
            await self._ledger.record_latency(tenant, finished.ttft_ms <= target_ms)
        except LedgerUnavailable:
            return

    async def _settle(self, bill: _Bill, checkpoints: Checkpoints) -> None:
        await checkpoints.stop()
        await self._ledger.settle(bill.tenant, bill.hold_id, bill.cost_micros, bill.tokens)
        record_event(bill.span, names.EVENT_BUDGET_SETTLE, {names.AMOUNT: bill.cost_micros})
        for usage in bill.attempts:
            self._telemetry.metrics.record_cost(bill.tenant, usage.model, usage.cost_micros)


class _Bill:
    """What one call has used so far, attempt by attempt, under one ledger hold."""

    def __init__(self, tenant: str, hold_id: str, span: Span) -> None:
        self.tenant = tenant
        self.hold_id = hold_id
        self.span = span  # the route span: budget and fallback events go there
        self.attempts: list[AttemptUsage] = []

    def charge(self, attempt: Attempt) -> AttemptUsage:
        """Record an attempt's usage once (a second call returns the same figures)."""
        usage = attempt.usage()
        if not attempt.charged:
            attempt.charged = True
            if usage.input_tokens or usage.output_tokens:
                self.attempts.append(usage)
        return usage

    def so_far(self, current: Attempt) -> tuple[int, int]:
        """(micro-USD, tokens) used by the call up to now, the attempt still streaming
        included: what a checkpoint records."""
        micros, tokens = self.cost_micros, self.tokens
        if not current.charged:
            usage = current.usage()
            micros += usage.cost_micros
            tokens += usage.input_tokens + usage.output_tokens
        return micros, tokens

    @property
    def cost_micros(self) -> int:
        """Total cost of the attempts so far."""
        return sum(u.cost_micros for u in self.attempts)

    @property
    def tokens(self) -> int:
        """Input plus output tokens of the attempts so far, for tokens-per-minute limits."""
        return sum(u.input_tokens + u.output_tokens for u in self.attempts)

    def total(self) -> AttemptUsage:
        """All attempts summed, as Done.total reports it."""
        return AttemptUsage(
            "",
            sum(u.input_tokens for u in self.attempts),
            sum(u.output_tokens for u in self.attempts),
            self.cost_micros,
        )
