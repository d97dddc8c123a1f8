"""fareway.v1.RouterService: decode, route, run, encode. The logic lives elsewhere."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from contextlib import aclosing, nullcontext
from functools import partial
from typing import assert_never

import grpc

from fareway.budgets.ledger import BudgetState
from fareway.core.errors import FarewayError
from fareway.routing.decision import Decision
from fareway.routing.request import TenantContext
from fareway.server.auth import current_principal
from fareway.server.budget_policy import apply_budget
from fareway.server.convert import (
    decode_request,
    encode_decision,
    encode_model,
    encode_tool_call,
    encode_usage,
)
from fareway.server.engine.events import (
    Billed,
    Delta,
    Escalated,
    FallbackTaken,
    Finished,
    GenerationEvent,
    Hedged,
    Routed,
    ToolCalled,
)
from fareway.server.interceptor import large_request
from fareway.server.runtime import Runtime
from fareway.server.status import abort
from fareway.telemetry.tracing import trace_id_hex
from fareway.v1 import router_pb2, router_pb2_grpc


class RouterService(router_pb2_grpc.RouterServiceServicer):
    """Serves Generate, Complete, Route and ListModels."""

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime
        self._budgets = SharedReads(runtime.ledger.state)

    async def Generate(
        self, request: router_pb2.GenerateRequest, context: grpc.aio.ServicerContext
    ) -> None:
        # Written with context.write rather than as an async generator: grpc cancels the
        # handler's task when the caller goes away, and only a coroutine receives that
        # cancellation inside its own frames, where it closes the run (cancelling its attempt)
        # and waits for the bill to settle. An async generator paused at a yield would be left
        # for the garbage collector.
        await self._stream(request, context, context.write)

    async def Complete(
        self, request: router_pb2.GenerateRequest, context: grpc.aio.ServicerContext
    ) -> router_pb2.CompleteResponse:
        events: list[router_pb2.GenerateEvent] = []

        async def keep(event: router_pb2.GenerateEvent) -> None:
            events.append(event)

        await self._stream(request, context, keep)
        return collect_reply(events)

    async def _stream(
        self,
        request: router_pb2.GenerateRequest,
        context: grpc.aio.ServicerContext,
        write: Callable[[router_pb2.GenerateEvent], Awaitable[None]],
    ) -> None:
        """Decide, run, and `write` each event as Generate sends it (Complete collects them).

        This loop is the second and last async frame a text delta crosses on its way from the
        provider (the attempt task's is the first; see server/engine/engine.py)."""
        started = self._rt.clock.monotonic()
        tracing = self._rt.telemetry.tracing
        try:
            with tracing.route_span(current_principal.get().tenant) as span:
                decision = await self._decide(request)
                rate = self._rt.rates[decision.request.tenant]
                trace_id = trace_id_hex(span)
                run = self._rt.generation.run(
                    decision, started, rate, span, context.time_remaining()
                )
                async with aclosing(run) as events:
                    async for event in events:
                        if isinstance(event, Routed):
                            tracing.record_decision(span, decision, event.budget_remaining_micros)
                        await write(encode_event(event, trace_id))
        except FarewayError as error:
            await abort(context, error, self._rt.clock.now())

    async def Route(
        self, request: router_pb2.GenerateRequest, context: grpc.aio.ServicerContext
    ) -> router_pb2.RouteDecision:
        tracing = self._rt.telemetry.tracing
        try:
            with tracing.route_span(current_principal.get().tenant) as span:
                decision = await self._decide(request)
                remaining = decision.tenant.budget_remaining_micros
                tracing.record_decision(span, decision, remaining)
                return encode_decision(decision, remaining, trace_id_hex(span))
        except FarewayError as error:
            await abort(context, error, self._rt.clock.now())

    async def ListModels(
        self, request: router_pb2.ListModelsRequest, context: grpc.aio.ServicerContext
    ) -> router_pb2.ListModelsResponse:
        models = [
            encode_model(
                m,
                simulated=self._rt.providers[m.provider].simulated,
                healthy=self._rt.circuit_breaker.healthy(m.id),
            )
            for m in self._rt.visible_models(current_principal.get())
        ]
        return router_pb2.ListModelsResponse(models=models, tiers=self._rt.catalog.tiers)

    async def _decide(self, request: router_pb2.GenerateRequest) -> Decision:
        principal = current_principal.get()
        policy = self._rt.policy_for(principal)
        budget = await self._budgets.read(principal.tenant)
        # The router's hint checks run with decoding, so one error lists every problem.
        check = partial(self._rt.router.violations, policy=policy)
        # A large request decodes and routes in its turn (see server.interceptor.FairShare).
        share = large_request.get()
        async with share.turn() if share is not None else nullcontext():
            routed = decode_request(request, principal.tenant, check)
            tenant = TenantContext(budget.remaining_micros, budget.latency_target_ms)
            decided = await self._rt.router.decide(routed, policy, tenant)
        decision = apply_budget(decided, budget, self._rt.catalog)
        model = decision.model
        self._rt.telemetry.metrics.record_decision(decision.strategy, model.id, model.tier)
        return decision


class SharedReads:
    """A tenant's budget state for concurrent callers, each from a ledger read that began after
    it asked, but one read for all who asked while the previous one ran.

    The first caller reads at once. Callers that arrive while that read runs wait for the next
    one, started as soon as it ends and shared by all of them: their state is as fresh as a
    read of their own (none is answered from a read that began before it asked), and a tenant
    with N calls in flight costs the ledger about two reads at a time instead of N. A read's
    error reaches every caller that shared it."""

    def __init__(self, read: Callable[[str], Awaitable[BudgetState]]) -> None:
        self._read = read
        self._busy: set[str] = set()  # tenants with a read running
        self._next: dict[str, asyncio.Future[BudgetState]] = {}  # the read after it, not begun
        self._tasks: set[asyncio.Future[BudgetState]] = set()  # the shared reads running

    async def read(self, tenant: str) -> BudgetState:
        if tenant not in self._busy:
            self._busy.add(tenant)
            try:
                return await self._read(tenant)
            finally:
                self._after(tenant)
        waiting = self._next.get(tenant)
        if waiting is None:
            waiting = self._next[tenant] = asyncio.get_running_loop().create_future()
        # Shielded: a caller that goes away must not cancel the others' read.
        return await asyncio.shield(waiting)

    def _after(self, tenant: str) -> None:
        """A read of `tenant` ended: start the one its waiters wait for, or be idle."""
        waiting = self._next.pop(tenant, None)
        if waiting is None:
            self._busy.discard(tenant)
            return
        task = asyncio.ensure_future(self._read(tenant))
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._deliver(tenant, waiting, done))

    def _deliver(
        self, tenant: str, waiting: asyncio.Future[BudgetState], done: asyncio.Future[BudgetState]
    ) -> None:
        self._tasks.discard(done)
        if done.cancelled():
            waiting.cancel()
        elif (error := done.exception()) is not None:
            waiting.set_exception(error)
            waiting.exception()  # retrieved here: every waiter may have gone away
        else:
            waiting.set_result(done.result())
        self._after(tenant)


def encode_event(event: GenerationEvent, trace_id: str) -> router_pb2.GenerateEvent:
    """The GenerateEvent that carries one engine event; `trace_id` goes into the decision.

    Exhaustive: an event kind without a case here fails mypy (assert_never) and raises at run
    time, instead of reaching the caller disguised as another kind."""
    match event:
        case Routed(decision=decision, budget_remaining_micros=remaining):
            return router_pb2.GenerateEvent(decision=encode_decision(decision, remaining, trace_id))
        case Delta(text=text):
            return router_pb2.GenerateEvent(delta=router_pb2.TextDelta(text=text))
        case ToolCalled(call=call):
            return router_pb2.GenerateEvent(tool_call=encode_tool_call(call))
        case Escalated():
            return router_pb2.GenerateEvent(
                escalation=router_pb2.Escalation(
                    from_model=event.from_model,
                    to_model=event.to_model,
                    reason=event.reason,
                    confidence=event.confidence,
                    discard_previous=event.discard_previous,
                )
            )
        case FallbackTaken():
            return router_pb2.GenerateEvent(
                fallback=router_pb2.Fallback(
                    from_model=event.from_model, to_model=event.to_model, error=event.error
                )
            )
        case Hedged():
            return router_pb2.GenerateEvent(
                hedge=router_pb2.Hedge(
                    from_model=event.from_model,
                    to_model=event.to_model,
                    after_ms=event.after_ms,
                    winner=event.winner,
                )
            )
        case Billed(usage=usage):
            return router_pb2.GenerateEvent(usage=encode_usage(usage))
        case Finished():
            return router_pb2.GenerateEvent(
                done=router_pb2.Done(
                    stop_reason=event.stop_reason,
                    total=encode_usage(event.total),
                    ttft_ms=event.ttft_ms,
                    signals=dict(event.signals),
                    reason=event.reason,
                )
            )
        case _:
            assert_never(event)


def collect_reply(events: Iterable[router_pb2.GenerateEvent]) -> router_pb2.CompleteResponse:
    """Complete's reply: Generate's events collected, so both say the same.

    The text is the finished answer's: an escalation with discard_previous drops the text
    before it, as a streaming caller is told to. Done.signals is merged into the decision's
    signals, Done's value winning on a shared key because it was learned later, and Done.reason
    is appended to the decision's reason."""
    reply = router_pb2.CompleteResponse()
    text: list[str] = []
    for event in events:
        kind = event.WhichOneof("event")
        if kind == "decision":
            reply.decision.CopyFrom(event.decision)
        elif kind == "delta":
            text.append(event.delta.text)
        elif kind == "tool_call":
            reply.tool_calls.append(event.tool_call)
        elif kind == "escalation":
            reply.escalations.append(event.escalation)
            if event.escalation.discard_previous:
                text.clear()
                del reply.tool_calls[:]
        elif kind == "fallback":
            reply.fallbacks.append(event.fallback)
        elif kind == "hedge":
            reply.hedges.append(event.hedge)
        elif kind == "usage":
            reply.usage.append(event.usage)
        elif kind == "done":
            reply.stop_reason = event.done.stop_reason
            reply.total.CopyFrom(event.done.total)
            reply.ttft_ms = event.done.ttft_ms
            reply.decision.signals.update(event.done.signals)
            if event.done.reason:
                reply.decision.reason = f"{reply.decision.reason}; {event.done.reason}"
        else:
            # Every kind this server sends is above; a new one must be collected, not lost.
            raise AssertionError(f"Complete does not collect GenerateEvent kind {kind!r}")
    reply.text = "".join(text)
    return reply
