"""An engine wired to the scripted provider, a memory ledger and a manual clock, for
in-process policy tests: no server, no network, no sleeping on the injected clock."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass, field, replace

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import INVALID_SPAN

from fareway.budgets.ledger import Limit, RateLimit
from fareway.budgets.memory import MemoryLedger
from fareway.budgets.pricing import Price
from fareway.budgets.windows import Window
from fareway.core.clock import ManualClock
from fareway.core.content import Message
from fareway.core.errors import FarewayError
from fareway.providers.base import ProviderCall
from fareway.routing.breaker import CircuitBreaker
from fareway.routing.catalog import ModelSpec
from fareway.routing.decision import (
    Candidate,
    Cascade,
    CascadeMode,
    ConfidenceSource,
    Decision,
    HedgePlan,
    Plan,
)
from fareway.routing.latency import LatencyStats
from fareway.routing.request import RouteRequest
from fareway.server.engine.engine import Engine, Run
from fareway.server.engine.events import Billed, Delta, GenerationEvent
from fareway.telemetry.setup import Telemetry
from tests.fakes.scripted import Script, ScriptedProvider, model

TENANT = "acme"
PROMPT_TOKENS = 10
MAX_TOKENS = 100
CAP_MICROS = 1_000_000

FAST = model("fast")
# Five times fast's prices: a budget that covers fast need not cover these.
STRONG = replace(model("strong", tier="powerful"), price=Price(5_000_000, 25_000_000))
SPARE = replace(model("spare", tier="balanced"), price=Price(5_000_000, 25_000_000))


@dataclass
class Rig:
    """One engine and what it runs against."""

    provider: ScriptedProvider
    ledger: MemoryLedger
    clock: ManualClock
    engine: Engine
    breaker: CircuitBreaker
    called: Mapping[str, asyncio.Event] = field(default_factory=dict)
    """Set, by model id, when that model receives its first call."""

    def run(self, decision: Decision, timeout_s: float | None = None) -> Run:
        started = self.clock.monotonic()
        return self.engine.run(decision, started, RateLimit(), INVALID_SPAN, timeout_s)

    async def play(
        self, decision: Decision, timeout_s: float | None = None
    ) -> tuple[list[GenerationEvent], FarewayError | None]:
        """Every event of one request, and the error it ended with (None: it answered)."""
        events: list[GenerationEvent] = []
        try:
            async with aclosing(self.run(decision, timeout_s)) as stream:
                async for event in stream:
                    events.append(event)
        except FarewayError as error:
            return events, error
        return events, None

    async def leave_when_stalled(self, decision: Decision, model_id: str) -> None:
        """Run the request the servicer's way (closed by aclosing when the handler's task is
        cancelled) and cancel it, as a caller leaving does, once `model_id`'s call stalls."""

        async def handler() -> None:
            async with aclosing(self.run(decision)) as events:
                async for _ in events:
                    pass

        task = asyncio.create_task(handler())
        await self.called[model_id].wait()
        [call] = self.provider.calls_to(model_id)
        await call.stalled.wait()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return
        raise AssertionError("the request ended before the caller left")

    async def figures(self) -> tuple[int, int]:
        """(spent, reserved) micro-USD of the tenant's day window."""
        [day] = (await self.ledger.state(TENANT)).limits
        return day.spent_micros, day.reserved_micros


async def rig(scripts: Mapping[str, Sequence[Script]], cap_micros: int = CAP_MICROS) -> Rig:
    """An engine whose models play `scripts` (per model id, in call order; a call beyond them
    fails the test)."""
    clock = ManualClock()
    queues = {model_id: list(plays) for model_id, plays in scripts.items()}
    called: defaultdict[str, asyncio.Event] = defaultdict(asyncio.Event)

    def next_script(call: ProviderCall) -> Script:
        called[call.model.id].set()
        queue = queues.get(call.model.id)
        if not queue:
            raise AssertionError(f"unexpected call to model {call.model.id!r}")
        return queue.pop(0)

    provider = ScriptedProvider(next_script, clock=clock)
    ledger = MemoryLedger(clock, hold_ttl_s=60)
    await ledger.configure(TENANT, [Limit(Window.DAY, cap_micros)])
    telemetry = Telemetry.from_providers(
        TracerProvider(), MeterProvider([InMemoryMetricReader()]), False
    )
    breaker = CircuitBreaker(clock)
    engine = Engine(
        {"scripted": provider},
        ledger,
        clock,
        LatencyStats(),
        telemetry,
        breaker=breaker,
    )
    return Rig(provider, ledger, clock, engine, breaker, called)


def decide(*models: ModelSpec, plan: Plan | None = None) -> Decision:
    """A decision for the first model, the others as the plan's fallback order (or `plan`)."""
    request = RouteRequest((Message.user("hi"),), MAX_TOKENS, TENANT, "req-1")
    ranked = tuple(Candidate(m, 1.0) for m in models)
    return Decision(
        request,
        "rules",
        "test",
        ranked,
        (),
        PROMPT_TOKENS,
        plan=plan or Plan(fallbacks=models[1:]),
    )


def cascade(
    first: ModelSpec,
    *ladder: ModelSpec,
    mode: CascadeMode = CascadeMode.BUFFERED,
    source: ConfidenceSource = ConfidenceSource.SELF_ASSESSMENT,
    fallbacks: tuple[ModelSpec, ...] = (),
    threshold: float = 0.8,
) -> Decision:
    """A cascade's decision: `first` answers, `ladder` are the stronger models."""
    plan = Plan(fallbacks, Cascade(ladder, threshold, mode, source))
    return decide(first, *ladder, *fallbacks, plan=plan)


def hedged(
    first: ModelSpec,
    hedge: ModelSpec,
    *fallbacks: ModelSpec,
    after_ms: int = 20,
    also: tuple[ModelSpec, ...] = (),
) -> Decision:
    """A decision for `first`, hedged on `hedge` (else on `also`, in order, when the budget
    cannot cover `hedge`) when its first token is `after_ms` late."""
    plan = Plan(fallbacks, hedge=HedgePlan((hedge, *also), after_ms))
    return decide(first, hedge, *also, *fallbacks, plan=plan)


def billed(events: Sequence[GenerationEvent]) -> int:
    """The micro-USD of every usage event."""
    return sum(e.usage.cost_micros for e in events if isinstance(e, Billed))


def kinds(events: Sequence[GenerationEvent]) -> list[type[GenerationEvent]]:
    """The events' kinds, a run of Deltas as one: the channel joins text that queued while the
    reader was away, so how many Deltas carry an answer depends on scheduling (tests check the
    text itself where it matters)."""
    out: list[type[GenerationEvent]] = []
    for event in events:
        if not (type(event) is Delta and out and out[-1] is Delta):
            out.append(type(event))
    return out
