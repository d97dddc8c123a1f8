"""The request engine: one decided request's attempts, run as tasks against one bill, following
the decision's plan, its events sent to the servicer through a channel.

Shape of a run (`Engine.run` returns a `Run`, which the servicer iterates):

    servicer write loop ◀── Channel ◀── attempt tasks (read the provider, send Delta)
                                    ◀── driver task (Routed, FallbackTaken, Escalated, Billed,
                                                     Finished; Hedged comes from the winner)

- The driver task admits the request (rate limit) and takes the hold in one ledger round trip
  that also returns the budget `Routed` reports, sends `Routed`, then runs the attempts the
  plan calls for and judges each result with the policies, each in its own
  file: fallback (`fallback.py`: down `plan.fallbacks` on a failure before the first token),
  hedge (`hedge.py`: `plan.hedge`, a second attempt racing a late first one), cascade
  (`cascade.py`: `plan.cascade`, up the ladder while answers are not confident enough) and
  breaker (`breaker.py`: admits each attempt, learns from each result). It never looks at
  the strategy's name. Whatever happens, it stops any attempt still running and settles the
  bill before it closes the channel (with the error, if any), so a caller who sees the end of
  the stream finds the ledger settled.
- Each attempt is a task (`attempt.py`) that alone drives its provider's stream, puts the text
  on the channel (directly, or through a cascade's `Answer`) and ends in a frozen
  `AttemptResult`; the bill records its usage once from that result. A losing or abandoned
  attempt is stopped by cancelling its task, never by closing its generator from another
  task, so its upstream connection closes with it.
- A hedge is planned only without a cascade (routing sees to it; the engine hedges only the
  first attempt of a request with no cascade): a cascade's answers are judged before they
  count, so racing them is left out.
- The remaining deadline is recomputed for every attempt from the request's deadline (on the
  event loop's clock, like the first-token limit, the hedge's delay and the SDKs' own
  timeouts); no fallback or escalation starts once it has passed.
- Every task is owned: the driver awaits each attempt task, and whatever ends the request
  cancels and awaits those still running (`_stop_all`, in the driver's `finally`); `Run.aclose`
  cancels and awaits the driver. The caller going away (its task cancelled, so it closes the
  run) therefore cancels the attempts, whose provider calls are closed with them; what was
  streamed is billed and nothing stays reserved.

- While text streams, the usage so far is checkpointed into the hold (`server/checkpoints.py`),
  so a process that dies mid-stream still has that much billed. With the ledger unreachable
  nothing streams unbilled: admission, the hold and the budget check come before the first
  event and raise LedgerUnavailable; a settle that fails after the text went out is retried in
  the background by the ledger wrapper (`server/ledger_health.py`).
- Ledger round trips per request, checkpoints aside: one before the first event (`hold` with
  `admit`: the rate limit, the hold and the budget state for `Routed` and the utilization
  gauge) and one after the answer (`settle`, which also counts the latency attainment when
  the tenant has a target). Fallbacks, escalations and hedges add one `hold` each. The latency
  count riding on the settle shares its fate: the wrapper retries a settle the ledger could
  not take, so an outage at the end neither fails a complete answer nor loses the count.
- An attempt's first token must come within its provider's `first_token_timeout_s`. A
  transition of a circuit is traced on the request's route span, counted and logged.

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
from types import MappingProxyType

from opentelemetry.trace import Span

from fareway.budgets.ledger import Ledger, RateLimit
from fareway.core.clock import Clock
from fareway.core.content import ToolChoiceMode
from fareway.core.errors import (
    AllCandidatesFailed,
    BudgetExceeded,
    StreamBroken,
)
from fareway.providers.assessment import with_instruction
from fareway.providers.base import Provider, ProviderCall
from fareway.routing.breaker import CircuitBreaker
from fareway.routing.catalog import ModelSpec
from fareway.routing.decision import (
    Cascade,
    ConfidenceSource,
    Decision,
    HedgePlan,
    summed,
)
from fareway.routing.latency import LatencyStats
from fareway.routing.request import RouteRequest
from fareway.routing.strategy import Completion
from fareway.server.engine.attempt import (
    AttemptJob,
    AttemptResult,
    Claim,
    Meter,
    Send,
    outcome,
    refused,
    run_attempt,
)
from fareway.server.engine.bill import Bill
from fareway.server.engine.breaker import BreakerPolicy
from fareway.server.engine.cascade import (
    SIGNAL,
    Answer,
    Judged,
    Ladder,
    escalation_reason,
    judge_answer,
)
from fareway.server.engine.channel import Channel
from fareway.server.engine.consult import consult
from fareway.server.engine.events import (
    Billed,
    Escalated,
    FallbackTaken,
    Finished,
    GenerationEvent,
    Routed,
)
from fareway.server.engine.fallback import Fallback, Verdict, judge
from fareway.server.engine.hedge import Race
from fareway.server.engine.observe import Observer
from fareway.server.engine.wiring import Wiring
from fareway.telemetry.setup import Telemetry


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
        observer = Observer(telemetry, latency, providers)
        self._wiring = Wiring(
            providers,
            ledger,
            clock,
            observer,
            BreakerPolicy(breaker, observer.circuit_changed),
            checkpoint_interval_s,
            dict(first_token_timeouts or {}),
        )

    def consult(
        self,
        request: RouteRequest,
        model: ModelSpec,
        system: str,
        prompt: str,
        max_tokens: int,
        timeout_s: float,
    ) -> Coroutine[None, None, Completion]:
        """A strategy's own billed, traced model call (`routing.strategy.Complete`; see
        `consult.py`)."""
        return consult(self._wiring, request, model, system, prompt, max_tokens, timeout_s)

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
        wiring: Wiring,
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
        self._running: dict[asyncio.Task[AttemptResult], Meter] = {}
        self._tried: list[str] = []  # model ids, in the order their attempts started

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
        """Stop the request (cancelling its driver and so its attempts) and wait until it has
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
        amount, state = await self._bill.hold(
            decision.estimated_cost_micros(decision.model), admit=self._rate
        )
        wiring.observer.held(self._span, amount)
        met_target: bool | None = None  # counted by the settle, for a tenant with a target
        try:
            wiring.observer.utilization(state)
            await self._channel.send(Routed(decision, state.remaining_micros))
            for usage in decision.spent:  # routing's own model calls, billed already
                await self._channel.send(Billed(usage))
            finished = await self._answer()
            await self._channel.send(finished)
            target_ms = decision.latency_target_ms
            if target_ms:
                met_target = finished.ttft_ms <= target_ms
        finally:
            try:
                await self._stop_all()
                await self._bill.settle(met_target)
            finally:
                wiring.observer.settled(
                    self._span, tenant, self._bill.cost_micros, self._bill.attempts
                )

    async def _answer(self) -> Finished:
        """The first answer (falling back, hedged), then, under a cascade, the escalations."""
        cascade = self._decision.plan.cascade
        result, answer = await self._first_answer(cascade)
        if cascade is None or answer is None:
            return self._finished(result)
        return await self._escalate(
            cascade, judge_answer(answer, result, self._decision.request.tools)
        )

    async def _first_answer(self, cascade: Cascade | None) -> tuple[AttemptResult, Answer | None]:
        """Attempts down the plan's fallback order until one answers (the fallback policy);
        the first is hedged when the plan says so and no cascade judges the answers."""
        plan = self._decision.plan
        fallback = Fallback(plan)
        model = self._decision.model
        while True:
            answer = Answer(cascade, self._channel.send) if cascade is not None else None
            if plan.hedge is not None and cascade is None and not self._tried:
                result = await self._hedged(model, plan.hedge)
            else:
                result = await self._attempt(model, answer.send if answer else self._channel.send)
            verdict = judge(result)
            if verdict is Verdict.ANSWERED:
                await self._channel.send(Billed(result.usage))
                return result, answer
            error = result.error
            assert error is not None, "judge() answers for every result without an error"
            if verdict is Verdict.BROKEN and (answer is None or answer.streamed):
                raise StreamBroken(error) from error
            # Before its first token, or mid-answer while a buffered cascade showed none of it.
            await self._bill_used(result)
            next_model = (
                None
                if self._out_of_time()
                else await fallback.next_model(self._afford, self._tried)
            )
            if next_model is None:
                raise AllCandidatesFailed(error, len(self._tried)) from error
            self._wiring.observer.fallback(self._span, model.id, next_model.id, error.describe())
            await self._channel.send(FallbackTaken(model.id, next_model.id, error.describe()))
            model = next_model

    async def _escalate(self, cascade: Cascade, judged: Judged) -> Finished:
        """Up the cascade's ladder until an answer is confident enough, the ladder ends, or
        the budget or the deadline stops it; the last good answer stands (the cascade policy)."""
        ladder = Ladder(cascade, self._tried)
        stands = ""  # why the answer stands where the plan would have escalated
        while not judged.accepted(cascade.threshold) and ladder:
            held = judged.result.model.id
            if self._out_of_time():
                stands = f"no time was left to escalate; the answer of {held} stands"
                break
            model = await ladder.next_model(self._afford)
            if model is None:
                assert ladder.unaffordable is not None, "next_model() names what it refused"
                stands = (
                    f"the tenant cannot afford escalating to {ladder.unaffordable.id}; "
                    f"the answer of {held} stands"
                )
                break
            why = escalation_reason(judged, cascade.threshold)
            discard = judged.answer.streamed
            self._wiring.observer.escalation(self._span, held, model.id, judged.gated(), why)
            await self._channel.send(Escalated(held, model.id, why, judged.gated(), discard))
            if discard:
                judged.answer.discard()
            answer = Answer(cascade, self._channel.send)
            result = await self._attempt(model, answer.send)
            verdict = judge(result)
            if verdict is Verdict.ANSWERED:
                await self._channel.send(Billed(result.usage))
                judged, stands = judge_answer(answer, result, self._decision.request.tools), ""
                continue
            error = result.error
            assert error is not None, "judge() answers for every result without an error"
            await self._bill_used(result)
            if answer.streamed:  # the caller holds part of the failed answer: too late
                raise StreamBroken(error) from error
            stands = (
                f"escalating to {model.id} failed ({error.describe()}); the answer of {held} stands"
            )
        await judged.answer.release()
        return self._finished(judged.result, {SIGNAL: judged.gated()}, stands)

    async def _hedged(self, model: ModelSpec, hedge: HedgePlan) -> AttemptResult:
        """The first attempt, hedged when its first token is late (the hedge policy): on the
        first of the plan's hedge models the budget covers beside it; whichever answers first
        streams, the other is stopped and billed."""
        race = Race(self._channel.send)
        first = self._launch(model, self._channel.send, race.claim_for(model.id))
        if await race.wait({first}, hedge.after_ms / 1000) or self._out_of_time():
            return await self._conclude(first)
        other = await self._hedge_model(model, hedge)
        if other is None:
            return await self._conclude(first)
        second = self._launch(other, self._channel.send, race.claim_for(other.id))
        race.start_hedge(model.id, other.id)
        await race.wait({first, second}, None)
        hedged = race.hedged
        assert hedged is not None, "start_hedge() records the hedge"
        self._wiring.observer.hedge(self._span, model.id, other.id, hedged.after_ms, race.winner)
        if race.winner:
            winner, loser = (first, second) if race.winner == model.id else (second, first)
            await self._bill_used(await self._stop(loser))
            return await self._conclude(winner)
        # Neither produced a token: the first's outcome decides, unless only the hedge answered
        # (an empty answer).
        results = [self._record(first), self._record(second)]
        chosen = next((r for r in results if r.error is None), results[0])
        for result in results:
            if result is not chosen:
                await self._bill_used(result)
        return chosen

    async def _hedge_model(self, running: ModelSpec, hedge: HedgePlan) -> ModelSpec | None:
        """The first hedge model not tried yet whose estimate the budget can hold beside the
        running attempt's (the hold re-targeted to both); None when none can."""
        estimate = self._decision.estimated_cost_micros
        for model in hedge.models:
            if model.id not in self._tried and await self._hold(
                estimate(running) + estimate(model)
            ):
                return model
        return None

    async def _attempt(self, model: ModelSpec, send: Send) -> AttemptResult:
        """One attempt on `model`, alone: started and awaited."""
        return await self._conclude(self._launch(model, send))

    def _launch(
        self, model: ModelSpec, send: Send, claim: Claim | None = None
    ) -> asyncio.Task[AttemptResult]:
        """Start an attempt as a task the run owns (`_conclude`, `_stop` or `_stop_all`)."""
        self._tried.append(model.id)
        meter = self._bill.meter(model)
        task = asyncio.create_task(self._attempt_task(model, meter, send, claim))
        self._running[task] = meter
        return task

    async def _conclude(self, task: asyncio.Task[AttemptResult]) -> AttemptResult:
        """Wait for an attempt to end and record it. Cancelled meanwhile, this leaves the task
        to `_stop_all`, which the driver runs whatever happens."""
        await asyncio.wait({task})
        return self._record(task)

    async def _stop(self, task: asyncio.Task[AttemptResult]) -> AttemptResult:
        """Cancel an attempt, wait until it has ended, and record it."""
        task.cancel()
        await asyncio.wait({task})
        return self._record(task)

    async def _stop_all(self) -> None:
        """Cancel and record every attempt still running (the request is ending), waiting
        through one more cancellation."""
        tasks = list(self._running)
        if not tasks:
            return
        for task in tasks:
            task.cancel()
        try:
            await asyncio.wait(tasks)
        except asyncio.CancelledError:
            await asyncio.wait(tasks)
            raise
        finally:
            for task in tasks:
                if task.done():
                    self._record(task)

    def _record(self, task: asyncio.Task[AttemptResult]) -> AttemptResult:
        """The ended attempt's result, billed once."""
        meter = self._running.pop(task)
        result = outcome(task, meter, self._wiring.clock)
        self._bill.record(result, meter)
        return result

    async def _attempt_task(
        self, model: ModelSpec, meter: Meter, send: Send, claim: Claim | None
    ) -> AttemptResult:
        """The body of an attempt's task: admitted by the breaker, run under its span, then
        what it taught."""
        wiring = self._wiring
        admission = wiring.breaker.admit(model, self._span)
        if admission.refusal is not None:
            return refused(model, admission.refusal, wiring.clock)
        job = AttemptJob(
            self._call(model),
            self._decision.prompt_tokens,
            wiring.first_token_timeouts.get(model.provider),
            admission.probe,
            claim,
        )
        observer = wiring.observer
        with observer.attempt_span(
            self._span, model, job.call.max_tokens, job.call.messages
        ) as span:
            result = await run_attempt(
                job, wiring.providers[model.provider], wiring.clock, send, meter, self._bill.tick
            )
            observer.attempt_ended(result, span)
            wiring.breaker.learn(result, self._span)
        return result

    def _call(self, model: ModelSpec) -> ProviderCall:
        """The provider call of an attempt on `model` starting now; a cascade asks for what
        its confidence source needs, unless the tool choice forces a tool call (such an answer
        is judged by its calls, and a self-assessment instruction would only compete with it)."""
        decision = self._decision
        request = decision.request
        cascade = decision.plan.cascade
        choice = request.tool_choice
        forced = choice is not None and choice.mode in (ToolChoiceMode.ANY, ToolChoiceMode.TOOL)
        source = cascade.source if cascade is not None and not forced else None
        assess = source is ConfidenceSource.SELF_ASSESSMENT
        return ProviderCall(
            model=model,
            system=with_instruction(request.system) if assess else request.system,
            messages=request.messages,
            max_tokens=decision.max_tokens_for(model),
            timeout_s=self._remaining(),
            self_assessment=assess,
            logprobs=source is ConfidenceSource.LOGPROBS,
            tools=request.tools,
            tool_choice=request.tool_choice,
        )

    async def _bill_used(self, result: AttemptResult) -> None:
        """Tell the caller of an attempt that did not answer but used something."""
        if result.usage.used:
            await self._channel.send(Billed(result.usage))

    async def _afford(self, model: ModelSpec) -> bool:
        """Re-target the hold to cover an attempt on `model`; False when it cannot."""
        return await self._hold(self._decision.estimated_cost_micros(model))

    async def _hold(self, estimate_micros: int) -> bool:
        try:
            amount, _ = await self._bill.hold(estimate_micros)
        except BudgetExceeded:
            return False
        self._wiring.observer.held(self._span, amount)
        return True

    def _finished(
        self, result: AttemptResult, signals: Mapping[str, float] | None = None, reason: str = ""
    ) -> Finished:
        first = result.first_token_at
        ttft_s = (first if first is not None else self._wiring.clock.monotonic()) - self._started_at
        return Finished(
            result.stop_reason,
            summed((*self._decision.spent, *self._bill.attempts)),
            round(ttft_s * 1000),
            MappingProxyType(dict(signals or {})),
            reason,
        )

    def _remaining(self) -> float | None:
        """What is left of the call's deadline, in seconds (None: no deadline)."""
        if self._deadline is None:
            return None
        return self._deadline - asyncio.get_running_loop().time()

    def _out_of_time(self) -> bool:
        remaining = self._remaining()
        return remaining is not None and remaining <= 0
