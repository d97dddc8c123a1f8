"""The request engine: one decided request's attempts, run as tasks against one bill, following
the decision's plan, its events sent to the servicer through a channel.

Shape of a run (`Engine.run` returns a `Run`, which the servicer iterates):

    servicer write loop ◀── Channel ◀── attempt task (reads the provider, sends Delta)
                                    ◀── driver task (Routed, FallbackTaken, Billed, Finished)

- The driver task admits the request (rate limit), takes the hold, sends `Routed`, then runs
  one attempt task at a time and judges each result with the fallback policy (`fallback.py`),
  following `decision.plan`; it never looks at the strategy's name. Whatever happens, it
  settles the bill before it closes the channel (with the error, if any), so a caller who sees
  the end of the stream finds the ledger settled.
- Each attempt is a task (`attempt.py`) that alone drives its provider's stream, puts the text
  on the channel and ends in a frozen `AttemptResult`; the bill records its usage once from
  that result. A lost attempt is stopped by cancelling its task, never by closing its
  generator from another task.
- The remaining deadline is recomputed for every attempt from the request's deadline (on the
  event loop's clock, like the first-token limit and the SDKs' own timeouts); no fallback
  starts once it has passed.
- Every task is owned: the driver awaits (or cancels and awaits) each attempt task in a
  `finally`, and `Run.aclose` cancels and awaits the driver. The caller going away (its task
  cancelled, so it closes the run) therefore cancels the attempt, whose provider call is closed
  with it; what was streamed is billed and nothing stays reserved.

- While text streams, the usage so far is checkpointed into the hold (`server/checkpoints.py`),
  so a process that dies mid-stream still has that much billed. With the ledger unreachable
  nothing streams unbilled: admission, the hold and the budget check come before the first
  event and raise LedgerUnavailable; a settle that fails after the text went out is retried in
  the background by the ledger wrapper (`server/ledger_health.py`).
- Each attempt is first admitted by the circuit breaker (`routing.breaker`): a candidate whose
  circuit opened since the decision is skipped like a failure before its first token, with a
  `fallback`. An attempt's first token must come within its provider's `first_token_timeout_s`.
  Every finished attempt is fed to the breaker (`observe.py`); a transition it causes is
  traced on the request's route span, counted and logged.

Frames on the common path (no fallback), counted as issue 9 counts them: the async frames that
receive a provider event and pass it on, after the provider's own generator. There are two:
the attempt task's loop (`attempt.run_attempt`: reads the provider, sends the piece on the
channel) and the servicer's write loop (`router_service.RouterService._stream`: takes it from
the channel, encodes it, writes it). `Run.__anext__` is a plain method that hands that loop
the channel's `receive` to await, not a frame the event passes through.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass

from opentelemetry.trace import Span

from fareway.budgets.ledger import Ledger, RateLimit
from fareway.core.clock import Clock
from fareway.core.errors import (
    AllCandidatesFailed,
    BudgetExceeded,
    LedgerUnavailable,
    StreamBroken,
)
from fareway.providers.base import Provider, ProviderCall
from fareway.routing.breaker import CircuitBreaker
from fareway.routing.catalog import ModelSpec
from fareway.routing.decision import Decision
from fareway.routing.latency import LatencyStats
from fareway.server.engine.attempt import (
    AttemptJob,
    AttemptResult,
    Meter,
    refused,
    run_attempt,
)
from fareway.server.engine.bill import Bill
from fareway.server.engine.channel import Channel
from fareway.server.engine.events import (
    AttemptUsage,
    Billed,
    FallbackTaken,
    Finished,
    GenerationEvent,
    Routed,
)
from fareway.server.engine.fallback import Fallback, Verdict, judge
from fareway.server.engine.observe import Observer
from fareway.telemetry.setup import Telemetry


@dataclass(frozen=True)
class _Wiring:
    """What every run of one engine shares."""

    providers: Mapping[str, Provider]
    ledger: Ledger
    clock: Clock
    observer: Observer
    checkpoint_interval_s: float
    first_token_timeouts: Mapping[str, float | None]


class Engine:
    """Runs decided requests against the providers; one per configuration."""

    def __init__(
        self,
        providers: Mapping[str, Provider],
        ledger: Ledger,
        clock: Clock,
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
        self._wiring = _Wiring(
            providers,
            ledger,
            clock,
            Observer(telemetry, latency, breaker, providers, clock),
            checkpoint_interval_s,
            dict(first_token_timeouts or {}),
        )

    def run(
        self,
        decision: Decision,
        started_at: float,
        rate: RateLimit,
        span: Span,
        timeout_s: float | None = None,
    ) -> Run:
        """The request's events: Routed, then the answer's events, ending with Finished.

        Iterating raises RateLimitExceeded or BudgetExceeded before anything else,
        AllCandidatesFailed when no candidate produced a token, and StreamBroken when a
        provider failed mid-answer. `started_at` is the request's arrival on the injected
        clock's monotonic scale; `span` is the request's route span, parent of the attempts;
        `timeout_s` what is left of the call's deadline (None: no deadline). Close the run
        (`aclose`, e.g. with contextlib.aclosing) when done with it.
        """
        return Run(self._wiring, decision, started_at, rate, span, timeout_s)


class Run:
    """One request in flight: an async iterator over its events. Nothing starts until the
    first event is asked for; `aclose` stops whatever still runs and waits until it has."""

    def __init__(
        self,
        wiring: _Wiring,
        decision: Decision,
        started_at: float,
        rate: RateLimit,
        span: Span,
        timeout_s: float | None,
    ) -> None:
        self._wiring = wiring
        self._decision = decision
        self._started_at = started_at
        self._rate = rate
        self._span = span
        self._timeout_s = timeout_s
        self._deadline: float | None = None
        self._channel = Channel()
        self._driver: asyncio.Task[None] | None = None
        self._bill = Bill(
            wiring.ledger,
            wiring.clock,
            decision.request.tenant,
            uuid.uuid4().hex,
            decision.prompt_tokens,
            wiring.checkpoint_interval_s,
        )

    def __aiter__(self) -> Run:
        return self

    def __anext__(self) -> Coroutine[None, None, GenerationEvent]:
        # Not a coroutine of its own: the channel's receive is what the caller awaits, so no
        # frame is added on the way to the writer.
        if self._driver is None:
            loop = asyncio.get_running_loop()
            if self._timeout_s is not None:
                self._deadline = loop.time() + self._timeout_s
            self._driver = asyncio.create_task(self._main())
        return self._channel.receive()

    async def aclose(self) -> None:
        """Stop the request (cancelling its driver and so its attempt) and wait until it has
        ended and settled. A cancellation meanwhile still waits for the end, then re-raises."""
        driver = self._driver
        if driver is None:
            return
        driver.cancel()
        try:
            await asyncio.wait({driver})
        except asyncio.CancelledError:
            await asyncio.wait({driver})
            raise

    async def _main(self) -> None:
        try:
            await self._drive()
        except Exception as error:  # noqa: BLE001
            # Not handled here but handed over: the reader raises it in the servicer's task,
            # where a FarewayError becomes a status and anything else surfaces as the bug it is.
            await self._channel.close(error)
        else:
            await self._channel.close()

    async def _drive(self) -> None:
        decision = self._decision
        wiring = self._wiring
        tenant = decision.request.tenant
        await wiring.ledger.admit(tenant, self._rate)
        amount = await self._bill.hold(decision.estimated_cost_micros(decision.model))
        wiring.observer.held(self._span, amount)
        try:
            state = await wiring.ledger.state(tenant)
            wiring.observer.utilization(state)
            await self._channel.send(Routed(decision, state.remaining_micros))
            finished = await self._answer()
            await self._channel.send(finished)
            target_ms = decision.request.latency_target_ms
            if target_ms:
                await self._record_latency(finished, target_ms)
        finally:
            try:
                await self._bill.settle()
            finally:
                wiring.observer.settled(
                    self._span, tenant, self._bill.cost_micros, self._bill.attempts
                )

    async def _answer(self) -> Finished:
        """Attempts down the plan until one answers (the fallback policy)."""
        fallback = Fallback(self._decision.plan)
        model = self._decision.model
        tried = 0
        while True:
            tried += 1
            result = await self._attempt(model)
            verdict = judge(result)
            if verdict is Verdict.ANSWERED:
                await self._channel.send(Billed(result.usage))
                return self._finished(result)
            error = result.error
            assert error is not None, "judge() answers for every result without an error"
            if verdict is Verdict.BROKEN:
                raise StreamBroken(error) from error
            if _used(result.usage):
                await self._channel.send(Billed(result.usage))
            next_model = None if self._out_of_time() else await fallback.next_model(self._afford)
            if next_model is None:
                raise AllCandidatesFailed(error, tried) from error
            self._wiring.observer.fallback(self._span, model.id, next_model.id, error.describe())
            await self._channel.send(FallbackTaken(model.id, next_model.id, error.describe()))
            model = next_model

    async def _attempt(self, model: ModelSpec) -> AttemptResult:
        """One attempt on `model`, admitted by the breaker, as a task that this coroutine owns:
        awaited, or (when this one is cancelled) cancelled and awaited, and billed either way."""
        wiring = self._wiring
        admission = wiring.observer.admit(model, self._span)
        if admission.refusal is not None:
            return refused(model, admission.refusal, wiring.clock)
        decision = self._decision
        request = decision.request
        call = ProviderCall(
            model=model,
            system=request.system,
            messages=request.messages,
            max_tokens=decision.max_tokens_for(model),
            timeout_s=self._remaining(),
        )
        job = AttemptJob(
            call,
            decision.prompt_tokens,
            wiring.first_token_timeouts.get(model.provider),
            admission.probe,
        )
        meter = self._bill.meter(model)
        task = asyncio.create_task(self._attempt_task(job, meter))
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            try:
                await _stop(task)
            finally:
                if task.done():
                    self._bill.record(_outcome(task, meter, wiring.clock), meter)
            raise
        result = _outcome(task, meter, wiring.clock)
        self._bill.record(result, meter)
        return result

    async def _attempt_task(self, job: AttemptJob, meter: Meter) -> AttemptResult:
        """The body of an attempt's task: the attempt under its span, then what it taught."""
        wiring = self._wiring
        model = job.call.model
        observer = wiring.observer
        with observer.attempt_span(
            self._span, model, job.call.max_tokens, job.call.messages
        ) as span:
            result = await run_attempt(
                job,
                wiring.providers[model.provider],
                wiring.clock,
                self._channel.send,
                meter,
                self._bill.tick,
            )
            observer.attempt_ended(result, span, self._span)
        return result

    async def _afford(self, model: ModelSpec) -> bool:
        """Re-target the hold to cover an attempt on `model`; False when it cannot."""
        try:
            amount = await self._bill.hold(self._decision.estimated_cost_micros(model))
        except BudgetExceeded:
            return False
        self._wiring.observer.held(self._span, amount)
        return True

    def _finished(self, result: AttemptResult) -> Finished:
        first = result.first_token_at
        ttft_s = (first if first is not None else self._wiring.clock.monotonic()) - self._started_at
        return Finished(result.stop_reason, self._bill.total(), round(ttft_s * 1000))

    def _remaining(self) -> float | None:
        """What is left of the call's deadline, in seconds (None: no deadline)."""
        if self._deadline is None:
            return None
        return self._deadline - asyncio.get_running_loop().time()

    def _out_of_time(self) -> bool:
        remaining = self._remaining()
        return remaining is not None and remaining <= 0

    async def _record_latency(self, finished: Finished, target_ms: int) -> None:
        """Count the request towards the latency attainment; an unreachable ledger loses this
        one count rather than fail an answer that is already complete."""
        try:
            await self._wiring.ledger.record_latency(
                self._decision.request.tenant, finished.ttft_ms <= target_ms
            )
        except LedgerUnavailable:
            return


async def _stop(task: asyncio.Task[AttemptResult]) -> None:
    """Cancel an attempt and wait until it has ended (through one more cancellation)."""
    task.cancel()
    try:
        await asyncio.wait({task})
    except asyncio.CancelledError:
        await asyncio.wait({task})
        raise


def _used(usage: AttemptUsage) -> bool:
    return bool(usage.input_tokens or usage.output_tokens)


def _outcome(task: asyncio.Task[AttemptResult], meter: Meter, clock: Clock) -> AttemptResult:
    """The ended task's result; one cancelled before it ever ran used nothing and says so.
    Raises what the task raised (a bug: attempts end in results)."""
    if task.cancelled():
        now = clock.monotonic()
        return AttemptResult(meter.model, meter.usage(), now, now, cancelled=True)
    return task.result()
