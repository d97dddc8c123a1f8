"""One request's life after routing: reserve, try candidates in order, stream, settle.

Knows nothing of gRPC: it yields plain events that the servicer turns into protobuf. The
guarantee it keeps: whatever happens (success, provider failure, client cancellation,
deadline), the reservation is settled exactly once, to what the attempts actually used.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from contextlib import aclosing
from dataclasses import dataclass

from fareway.budgets.ledger import Ledger
from fareway.core.clock import Clock
from fareway.core.errors import AllCandidatesFailed, ProviderError, StreamBroken
from fareway.providers.base import Finish, Provider, ProviderCall, TextChunk, UsageReport
from fareway.routing.catalog import ModelSpec
from fareway.routing.decision import Decision
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
        self, providers: Mapping[str, Provider], ledger: Ledger, clock: Clock, max_attempts: int
    ) -> None:
        self._providers = providers
        self._ledger = ledger
        self._clock = clock
        self._max_attempts = max_attempts

    async def run(
        self, decision: Decision, started_at: float, timeout_s: float | None = None
    ) -> AsyncGenerator[GenerationEvent, None]:
        """Yield Routed, then the answer's events, ending with Finished.

        Raises BudgetExceeded before anything is yielded, AllCandidatesFailed when no candidate
        produced a token, and StreamBroken when a provider failed mid-answer. `started_at` is
        the request's arrival on the injected clock's monotonic scale.
        """
        request = decision.request
        attempts = [c.model for c in decision.ranked[: self._max_attempts]]
        hold = max(decision.estimated_cost_micros(m) for m in attempts)
        await self._ledger.reserve(request.tenant, request.request_id, hold)
        billed: list[AttemptUsage] = []
        try:
            state = await self._ledger.state(request.tenant)
            yield Routed(decision, state.remaining_micros)
            async for event in self._attempts(decision, attempts, billed, started_at, timeout_s):
                yield event
                if isinstance(event, Finished):
                    target = request.hints.latency_target_ms or state.latency_target_ms
                    if target:
                        met = event.ttft_ms <= target
                        await self._ledger.record_latency(request.tenant, met)
        finally:
            spent = sum(u.cost_micros for u in billed)
            await self._ledger.settle(request.tenant, request.request_id, spent)

    async def _attempts(
        self,
        decision: Decision,
        attempts: list[ModelSpec],
        billed: list[AttemptUsage],
        started_at: float,
        timeout_s: float | None,
    ) -> AsyncGenerator[GenerationEvent, None]:
        for index, model in enumerate(attempts):
            attempt = _Attempt(model, decision)
            try:
                async for event in attempt.stream(self._providers[model.provider], timeout_s):
                    if attempt.ttft_s is None:
                        attempt.ttft_s = self._clock.monotonic() - started_at
                    yield event
            except ProviderError as error:
                error.model = model.id
                if attempt.ttft_s is not None:
                    raise StreamBroken(error) from error
                if index == len(attempts) - 1:
                    raise AllCandidatesFailed(error, len(attempts)) from error
                usage = attempt.usage()
                attempt.recorded = True
                if usage.input_tokens or usage.output_tokens:
                    billed.append(usage)
                    yield Billed(usage)
                yield FallbackTaken(model.id, attempts[index + 1].id, error.describe())
                continue
            finally:
                # Cancelled or broken mid-answer: still charge what this attempt used.
                if not attempt.recorded:
                    billed.append(attempt.usage())
                    attempt.recorded = True
            usage = billed[-1]
            yield Billed(usage)
            total = AttemptUsage(
                "",
                sum(u.input_tokens for u in billed),
                sum(u.output_tokens for u in billed),
                sum(u.cost_micros for u in billed),
            )
            yield Finished(attempt.stop_reason, total, round((attempt.ttft_s or 0.0) * 1000))
            return


class _Attempt:
    """One model's try: streams its text and remembers what it used."""

    def __init__(self, model: ModelSpec, decision: Decision) -> None:
        self.model = model
        self._decision = decision
        self.ttft_s: float | None = None
        self.stop_reason = ""
        self.recorded = False
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
        """The provider's figures; where a stream was cut before its final count, at least an
        estimate from the text that was streamed."""
        text = "".join(self._streamed)
        reported = self._reported
        input_tokens = reported.input_tokens if reported else 0
        output_tokens = reported.output_tokens if reported else 0
        if text and not self.stop_reason:
            input_tokens = input_tokens or self._decision.prompt_tokens
            output_tokens = max(output_tokens, estimate_tokens(text))
        cost = self.model.price.cost_micros(input_tokens, output_tokens)
        return AttemptUsage(self.model.id, input_tokens, output_tokens, cost)
