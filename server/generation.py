"""One request's life after routing: reserve, try candidates in order, stream, settle.

Knows nothing of gRPC: it yields plain events that the servicer turns into protobuf. The
guarantee it keeps: whatever happens (success, provider failure, client cancellation,
deadline), the reservation is settled exactly once, to what the attempts actually used.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from dataclasses import dataclass

from fareway.budgets.ledger import Ledger, RateLimit
from fareway.core.clock import Clock
from fareway.core.errors import AllCandidatesFailed, BudgetExceeded, ProviderError, StreamBroken
from fareway.providers.base import Finish, Provider, ProviderCall, TextChunk, UsageReport
from fareway.routing.catalog import ModelSpec
from fareway.routing.decision import Decision
from fareway.routing.latency import LatencyStats
from fareway.routing.tokens import estimate_tokens


@dataclass(frozen=True)
class AttemptUsage:
    """What one model attempt used and cost (or, with model "", all attempts together)."""

    model: str
    input_tokens: int
    output_tokens: int
    cost_micros: int


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
class Billed:
    """One attempt's usage, charged to the tenant."""

    usage: AttemptUsage


@dataclass(frozen=True)
class Finished:
    """The answer is complete."""

    stop_reason: str
    total: AttemptUsage
    ttft_ms: int


GenerationEvent = Routed | Delta | FallbackTaken | Billed | Finished


class Generation:
    """Runs decided requests against the providers, holding budget for them meanwhile."""

    def __init__(
        self,
        providers: Mapping[str, Provider],
        ledger: Ledger,
        clock: Clock,
        max_attempts: int,
        latency: LatencyStats,
    ) -> None:
        self._providers = providers
        self._ledger = ledger
        self._clock = clock
        self._max_attempts = max_attempts
        self._latency = latency

    async def run(
        self,
        decision: Decision,
        started_at: float,
        rate: RateLimit,
        timeout_s: float | None = None,
    ) -> AsyncGenerator[GenerationEvent, None]:
        """Yield Routed, then the answer's events, ending with Finished.

        Raises RateLimitExceeded or BudgetExceeded before anything is yielded,
        AllCandidatesFailed when no candidate produced a token, and StreamBroken when a
        provider failed mid-answer. `started_at` is the request's arrival on the injected
        clock's monotonic scale.
        """
        request = decision.request
        await self._ledger.admit(request.tenant, rate)
        bill = _Bill(request.tenant, uuid.uuid4().hex)
        first = decision.model
        await self._ledger.hold(bill.tenant, bill.hold_id, decision.estimated_cost_micros(first))
        try:
            state = await self._ledger.state(request.tenant)
            yield Routed(decision, state.remaining_micros)
            # aclosing: when the caller goes away mid-stream, the attempt must be closed (and
            # charged) before the finally below settles the bill.
            attempts = self._attempts(decision, bill, started_at, timeout_s)
            async with aclosing(attempts) as events:
                async for event in events:
                    yield event
                    if isinstance(event, Finished):
                        target = request.latency_target_ms
                        if target:
                            met = event.ttft_ms <= target
                            await self._ledger.record_latency(request.tenant, met)
        finally:
            await self._ledger.settle(bill.tenant, bill.hold_id, bill.cost_micros, bill.tokens)

    async def _attempts(
        self, decision: Decision, bill: _Bill, started_at: float, timeout_s: float | None
    ) -> AsyncGenerator[GenerationEvent, None]:
        """Try the ranked candidates in turn (the first already held for) until one answers."""
        queue = [c.model for c in decision.ranked[1 : self._max_attempts]]
        model = decision.model
        tried = 0
        while True:
            tried += 1
            attempt = _Attempt(model, decision)
            attempt_started = self._clock.monotonic()
            first_token_at = 0.0
            try:
                stream = attempt.stream(self._providers[model.provider], timeout_s)
                async with aclosing(stream) as deltas:
                    async for event in deltas:
                        if attempt.ttft_s is None:
                            first_token_at = self._clock.monotonic()
                            attempt.ttft_s = first_token_at - started_at
                        yield event
            except ProviderError as error:
                error.model = model.id
                self._latency.record_failure(model.id)
                if attempt.ttft_s is not None:
                    raise StreamBroken(error) from error
                usage = bill.charge(attempt)
                if usage.input_tokens or usage.output_tokens:
                    yield Billed(usage)
                next_model = await self._hold_for_next(decision, queue, bill)
                if next_model is None:
                    raise AllCandidatesFailed(error, tried) from error
                yield FallbackTaken(model.id, next_model.id, error.describe())
                model = next_model
                continue
            finally:
                # Cancelled or broken mid-answer: still charge what this attempt used.
                usage = bill.charge(attempt)
            if attempt.ttft_s is not None:
                self._latency.record_success(
                    model.id,
                    ttft_s=first_token_at - attempt_started,
                    output_tokens=usage.output_tokens,
                    stream_s=self._clock.monotonic() - first_token_at,
                )
            yield Billed(usage)
            ttft_ms = round((attempt.ttft_s or 0.0) * 1000)
            yield Finished(attempt.stop_reason, bill.total(), ttft_ms)
            return

    async def _hold_for_next(
        self, decision: Decision, queue: list[ModelSpec], bill: _Bill
    ) -> ModelSpec | None:
        """The next candidate whose attempt the budget can still cover, with the hold raised to
        what was billed so far plus its estimate; None when no candidate is left or affordable."""
        while queue:
            model = queue.pop(0)
            amount = bill.cost_micros + decision.estimated_cost_micros(model)
            try:
                await self._ledger.hold(bill.tenant, bill.hold_id, amount)
            except BudgetExceeded:
                continue
            return model
        return None


class _Bill:
    """What one call has used so far, attempt by attempt, under one ledger hold."""

    def __init__(self, tenant: str, hold_id: str) -> None:
        self.tenant = tenant
        self.hold_id = hold_id
        self.attempts: list[AttemptUsage] = []

    def charge(self, attempt: _Attempt) -> AttemptUsage:
        """Record an attempt's usage once (a second call returns the same figures)."""
        usage = attempt.usage()
        if not attempt.charged:
            attempt.charged = True
            if usage.input_tokens or usage.output_tokens:
                self.attempts.append(usage)
        return usage

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


class _Attempt:
    """One model's try: streams its text and remembers what it used."""

    def __init__(self, model: ModelSpec, decision: Decision) -> None:
        self.model = model
        self._decision = decision
        self.ttft_s: float | None = None
        self.stop_reason = ""
        self.charged = False  # set by _Bill.charge
        self._reported: UsageReport | None = None
        self._streamed: list[str] = []

    async def stream(
        self, provider: Provider, timeout_s: float | None
    ) -> AsyncGenerator[Delta, None]:
        request = self._decision.request
        call = ProviderCall(
            model=self.model,
            system=request.system,
            messages=request.messages,
            max_tokens=self._decision.max_tokens_for(self.model),
            timeout_s=timeout_s,
        )
        async with aclosing(provider.stream(call)) as events:
            async for event in events:
                if isinstance(event, TextChunk):
                    self._streamed.append(event.text)
                    yield Delta(event.text)
                elif isinstance(event, UsageReport):
                    self._reported = event
                elif isinstance(event, Finish):
                    self.stop_reason = event.stop_reason

    def usage(self) -> AttemptUsage:
        """The provider's figures; where a stream was cut before its final count, or a server
        never reports usage (some OpenAI-compatible ones ignore include_usage), at least a
        conservative estimate from the prompt and the text that was streamed."""
        text = "".join(self._streamed)
        reported = self._reported
        input_tokens = reported.input_tokens if reported else 0
        output_tokens = reported.output_tokens if reported else 0
        if text and (reported is None or not self.stop_reason):
            input_tokens = input_tokens or self._decision.prompt_tokens
            output_tokens = max(output_tokens, estimate_tokens(text))
        cost = self.model.price.cost_micros(input_tokens, output_tokens)
        return AttemptUsage(self.model.id, input_tokens, output_tokens, cost)
