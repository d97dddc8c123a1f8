"""The router skips models whose circuit is open (F10), saying until when, and fails fast with
CircuitOpen when nothing else could serve the request."""

from __future__ import annotations

import pytest

from fareway.core.clock import ManualClock
from fareway.routing.breaker import BreakerPolicy, CircuitBreaker, CircuitOpen, Outcome
from fareway.routing.catalog import Catalog
from fareway.routing.router import Router, TenantPolicy
from fareway.routing.strategies.rules import RulesStrategy

HAIKU, SONNET, OPUS = "claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-6"
OPEN_UNTIL = "circuit open until 2026-01-15T12:00:30Z"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def breaker(clock: ManualClock) -> CircuitBreaker:
    return CircuitBreaker(clock, BreakerPolicy(failures=1, cool_down_s=30))


@pytest.fixture
def guarded(catalog: Catalog, breaker: CircuitBreaker) -> Router:
    """The default catalog's router with a circuit breaker, as the server assembles it."""
    rules = RulesStrategy(catalog, [], default_tier="balanced")
    return Router(catalog, {"rules": rules}, breaker=breaker)


def trip(breaker: CircuitBreaker, *models: str) -> None:
    for model in models:
        assert breaker.record(model, Outcome.FAILURE) is not None


async def test_an_open_model_is_excluded_with_until_when(
    guarded: Router, breaker: CircuitBreaker, policy: TenantPolicy, make_request
) -> None:
    trip(breaker, SONNET)

    decision = await guarded.decide(make_request("Tell me about tides."), policy)

    assert decision.model.id != SONNET
    assert SONNET not in [c.model.id for c in decision.ranked], "nor is it a fallback"
    assert {c.model.id: c.excluded_reason for c in decision.excluded} == {SONNET: OPEN_UNTIL}


async def test_past_the_cool_down_the_model_is_eligible_again_for_its_probe(
    guarded: Router, breaker: CircuitBreaker, clock: ManualClock, policy: TenantPolicy, make_request
) -> None:
    trip(breaker, SONNET)
    clock.advance(30)

    decision = await guarded.decide(make_request("Tell me about tides."), policy)

    assert decision.model.id == SONNET
    assert decision.excluded == ()


async def test_a_model_whose_probe_is_in_flight_is_skipped(
    guarded: Router, breaker: CircuitBreaker, clock: ManualClock, policy: TenantPolicy, make_request
) -> None:
    trip(breaker, SONNET)
    clock.advance(30)
    assert breaker.admit(SONNET).probe

    decision = await guarded.decide(make_request("Tell me about tides."), policy)

    assert {c.model.id: c.excluded_reason for c in decision.excluded} == {
        SONNET: "circuit half-open: a probe attempt is in flight"
    }


async def test_a_pinned_model_with_an_open_circuit_fails_fast_with_retry_after(
    guarded: Router, breaker: CircuitBreaker, policy: TenantPolicy, make_request
) -> None:
    trip(breaker, OPUS)

    with pytest.raises(CircuitOpen) as caught:
        await guarded.decide(make_request(model=OPUS), policy)

    error = caught.value
    assert error.model == OPUS
    assert error.retry_after_s == 30
    assert str(error) == f"no model can serve this request now; {OPUS}: {OPEN_UNTIL}"


async def test_with_every_circuit_open_the_first_to_reopen_is_named(
    guarded: Router, breaker: CircuitBreaker, clock: ManualClock, policy: TenantPolicy, make_request
) -> None:
    trip(breaker, OPUS)
    clock.advance(10)
    trip(breaker, HAIKU, SONNET)

    with pytest.raises(CircuitOpen) as caught:
        await guarded.decide(make_request("Tell me about tides."), policy)

    assert caught.value.model == OPUS
    assert caught.value.retry_after_s == 20


async def test_a_model_the_tenant_may_not_use_is_excluded_for_that_not_its_circuit(
    guarded: Router, breaker: CircuitBreaker, make_request
) -> None:
    trip(breaker, OPUS, SONNET)
    policy = TenantPolicy("rules", frozenset({HAIKU, SONNET}))

    decision = await guarded.decide(make_request("Tell me about tides."), policy)

    assert decision.model.id == HAIKU
    reasons = {c.model.id: c.excluded_reason for c in decision.excluded}
    assert reasons == {OPUS: "not allowed for tenant 'demo'", SONNET: OPEN_UNTIL}


async def test_without_a_breaker_nothing_is_excluded(
    router: Router, policy: TenantPolicy, make_request
) -> None:
    decision = await router.decide(make_request("Tell me about tides."), policy)

    assert decision.excluded == ()
