"""The engine's ledger round trips: one before the first event (a hold that admits the request
and returns the budget `Routed` reports) and one after the answer (a settle that carries the
latency count), whatever the tenant's target."""

from __future__ import annotations

from contextlib import aclosing
from dataclasses import replace

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import INVALID_SPAN

from fareway.budgets.ledger import BudgetState, Limit, RateLimit
from fareway.budgets.memory import MemoryLedger
from fareway.budgets.windows import Window
from fareway.core.clock import ManualClock
from fareway.core.errors import FarewayError, RateLimitExceeded
from fareway.routing.decision import Decision
from fareway.routing.latency import LatencyStats
from fareway.routing.request import TenantContext
from fareway.server.engine.engine import Engine
from fareway.server.engine.events import GenerationEvent, Routed
from fareway.telemetry.setup import Telemetry
from tests.fakes.scripted import ScriptedProvider, answer
from tests.server.engine.rig import CAP_MICROS, FAST, TENANT, decide


class CountingLedger(MemoryLedger):
    """A memory ledger that notes each round trip the engine makes, by kind."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock, hold_ttl_s=60)
        self.calls: list[str] = []

    async def state(self, tenant: str) -> BudgetState:
        self.calls.append("state")
        return await super().state(tenant)

    async def hold(
        self, tenant: str, hold_id: str, amount_micros: int, *, admit: RateLimit | None = None
    ) -> BudgetState:
        self.calls.append("hold" if admit is None else "hold+admit")
        return await super().hold(tenant, hold_id, amount_micros, admit=admit)

    async def settle(
        self,
        tenant: str,
        hold_id: str,
        actual_micros: int,
        tokens: int = 0,
        *,
        met_target: bool | None = None,
    ) -> None:
        self.calls.append("settle" if met_target is None else "settle+latency")
        await super().settle(tenant, hold_id, actual_micros, tokens, met_target=met_target)

    async def checkpoint(self, tenant: str, hold_id: str, used_micros: int, tokens: int) -> None:
        self.calls.append("checkpoint")
        await super().checkpoint(tenant, hold_id, used_micros, tokens)


async def play(
    decision: Decision, rate: RateLimit | None = None
) -> tuple[CountingLedger, list[GenerationEvent], FarewayError | None]:
    """Run `decision` (FAST answers) against a counting ledger: the ledger, the events and the
    error the request ended with (None: it answered)."""
    clock = ManualClock()
    provider = ScriptedProvider(lambda call: answer("Hello", ", world"), clock=clock)
    ledger = CountingLedger(clock)
    await ledger.configure(TENANT, [Limit(Window.DAY, CAP_MICROS)])
    telemetry = Telemetry.from_providers(
        TracerProvider(), MeterProvider([InMemoryMetricReader()]), False
    )
    engine = Engine({"scripted": provider}, ledger, clock, LatencyStats(), telemetry)
    ledger.calls.clear()
    events: list[GenerationEvent] = []
    run = engine.run(decision, clock.monotonic(), rate or RateLimit(), INVALID_SPAN)
    try:
        async with aclosing(run) as stream:
            async for event in stream:
                events.append(event)
    except FarewayError as error:
        return ledger, events, error
    return ledger, events, None


async def test_a_request_makes_one_round_trip_before_and_one_after() -> None:
    decision = decide(FAST)

    ledger, events, error = await play(decision)

    assert error is None
    assert ledger.calls == ["hold+admit", "settle"]
    routed = events[0]
    assert isinstance(routed, Routed)
    # What the hold's own reply said: the cap less this request's estimate.
    estimate = decision.estimated_cost_micros(FAST)
    assert routed.budget_remaining_micros == CAP_MICROS - estimate


async def test_a_latency_target_is_counted_by_the_settle() -> None:
    decision = replace(decide(FAST), tenant=TenantContext(latency_target_ms=60_000))

    ledger, _, error = await play(decision)

    assert error is None
    assert ledger.calls == ["hold+admit", "settle+latency"]
    await ledger.settle(TENANT, "a-miss", 0, met_target=False)
    assert (await ledger.state(TENANT)).latency_attainment == 0.5  # the request met it


async def test_a_rate_limited_request_streams_nothing_and_holds_nothing() -> None:
    ledger, events, error = await play(decide(FAST), RateLimit(requests_per_minute=0))

    assert isinstance(error, RateLimitExceeded)
    assert events == []
    assert ledger.calls == ["hold+admit"]  # refused: nothing held, so nothing to settle
    [day] = (await ledger.state(TENANT)).limits
    assert (day.spent_micros, day.reserved_micros) == (0, 0)
