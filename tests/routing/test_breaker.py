"""The per-model circuit breaker (F10) on a manual clock: when it opens, for how long, and the
half-open probe."""

from __future__ import annotations

from datetime import timedelta

import pytest

from fareway.core.clock import ManualClock
from fareway.core.errors import (
    Overloaded,
    ProviderError,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnreachable,
    RateLimited,
)
from fareway.routing.breaker import (
    BreakerPolicy,
    CircuitBreaker,
    CircuitOpen,
    CircuitState,
    Outcome,
    Transition,
    outcome_of,
    utc_iso,
)

M = "fast-1"
POLICY = BreakerPolicy(failures=3, window_s=60, failure_rate=0.5, cool_down_s=30)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()  # 2026-01-15T12:00:00Z


def fail(
    breaker: CircuitBreaker, times: int = 1, *, retry_after_s: float | None = None
) -> list[Transition]:
    changes = [
        breaker.record(M, Outcome.FAILURE, retry_after_s=retry_after_s, cause="overloaded: 500")
        for _ in range(times)
    ]
    return [c for c in changes if c is not None]


def succeed(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        assert breaker.record(M, Outcome.SUCCESS) is None


def open_breaker(clock: ManualClock, policy: BreakerPolicy = POLICY) -> CircuitBreaker:
    breaker = CircuitBreaker(clock, policy)
    fail(breaker, policy.failures)
    assert breaker.state(M) is CircuitState.OPEN
    return breaker


def test_it_opens_after_the_failure_count_and_says_until_when(clock: ManualClock) -> None:
    breaker = CircuitBreaker(clock, POLICY)
    assert fail(breaker, 2) == []
    assert breaker.state(M) is CircuitState.CLOSED
    assert breaker.healthy(M)

    [change] = fail(breaker)

    assert change.before is CircuitState.CLOSED
    assert change.after is CircuitState.OPEN
    assert change.open_until == clock.now() + timedelta(seconds=30)
    assert change.cause == "overloaded: 500"
    assert not breaker.healthy(M)
    refusal = breaker.exclusion(M)
    assert isinstance(refusal, CircuitOpen)
    assert str(refusal) == "circuit open until 2026-01-15T12:00:30Z"
    assert refusal.retry_after_s == 30
    assert refusal.model == M
    assert not breaker.admit(M).allowed


def test_failures_older_than_the_window_do_not_count(clock: ManualClock) -> None:
    breaker = CircuitBreaker(clock, POLICY)
    fail(breaker, 2)
    clock.advance(61)  # past the window

    assert fail(breaker, 2) == []
    assert breaker.state(M) is CircuitState.CLOSED
    assert len(fail(breaker)) == 1, "three failures within one window"


def test_a_busy_model_opens_on_the_failure_rate_not_the_count(clock: ManualClock) -> None:
    breaker = CircuitBreaker(clock, POLICY)
    succeed(breaker, 10)

    assert fail(breaker, 9) == [], "9 failures of 19 attempts is under 50%"
    [change] = fail(breaker)  # 10 of 20
    assert change.after is CircuitState.OPEN


def test_a_zero_rate_lets_the_count_decide(clock: ManualClock) -> None:
    breaker = CircuitBreaker(clock, BreakerPolicy(failures=3, failure_rate=0))
    succeed(breaker, 100)

    assert len(fail(breaker, 3)) == 1


def test_min_attempts_holds_the_circuit_closed_until_the_window_has_enough(
    clock: ManualClock,
) -> None:
    breaker = CircuitBreaker(clock, BreakerPolicy(failures=2, failure_rate=0.5, min_attempts=6))

    assert fail(breaker, 5) == []
    assert len(fail(breaker)) == 1


def test_rejections_and_abandoned_attempts_count_neither_way(clock: ManualClock) -> None:
    breaker = CircuitBreaker(clock, POLICY)
    for _ in range(10):
        assert breaker.record(M, Outcome.NEUTRAL) is None
    fail(breaker, 2)
    assert breaker.state(M) is CircuitState.CLOSED, "2 failures < 3, whatever the neutral ones"


@pytest.mark.parametrize(
    ("answered", "error", "expected"),
    [
        (True, None, Outcome.SUCCESS),
        (False, None, Outcome.NEUTRAL),  # cancelled before the first token
        (False, ProviderRejected("bad key"), Outcome.NEUTRAL),
        (False, CircuitOpen("circuit open"), Outcome.NEUTRAL),
        (False, RateLimited("429"), Outcome.FAILURE),
        (False, Overloaded("529"), Outcome.FAILURE),
        (False, ProviderTimeout("no first token"), Outcome.FAILURE),
        (False, ProviderUnreachable("refused"), Outcome.FAILURE),
        (False, ProviderError("undecodable"), Outcome.FAILURE),
    ],
)
def test_which_attempts_count(
    answered: bool, error: ProviderError | None, expected: Outcome
) -> None:
    assert outcome_of(answered, error) is expected


def test_it_stays_open_for_the_cool_down(clock: ManualClock) -> None:
    breaker = open_breaker(clock)
    clock.advance(29.5)

    assert breaker.exclusion(M) is not None
    assert not breaker.admit(M).allowed
    clock.advance(0.5)
    assert breaker.exclusion(M) is None, "past the cool-down a request may probe it"


def test_a_retry_after_longer_than_the_cool_down_keeps_it_open_longer(clock: ManualClock) -> None:
    breaker = CircuitBreaker(clock, POLICY)
    fail(breaker, retry_after_s=120)  # the first failure's Retry-After is remembered
    [change] = fail(breaker, 2)

    assert change.open_until == clock.now() + timedelta(seconds=120)
    clock.advance(60)
    refusal = breaker.exclusion(M)
    assert refusal is not None
    assert str(refusal) == "circuit open until 2026-01-15T12:02:00Z"
    assert refusal.retry_after_s == 60
    clock.advance(60)
    assert breaker.exclusion(M) is None


def test_a_retry_after_shorter_than_the_cool_down_changes_nothing(clock: ManualClock) -> None:
    breaker = CircuitBreaker(clock, POLICY)
    [change] = fail(breaker, 3, retry_after_s=5)

    assert change.open_until == clock.now() + timedelta(seconds=30)


def test_a_late_failure_with_a_longer_retry_after_extends_an_open_circuit(
    clock: ManualClock,
) -> None:
    breaker = open_breaker(clock)
    assert fail(breaker, retry_after_s=90) == [], "an attempt admitted before it opened"

    clock.advance(60)
    assert breaker.exclusion(M) is not None
    clock.advance(30)
    assert breaker.exclusion(M) is None


def test_half_open_lets_exactly_one_probe_through(clock: ManualClock) -> None:
    breaker = open_breaker(clock)
    clock.advance(30)

    probe = breaker.admit(M)
    assert (probe.allowed, probe.probe) == (True, True)
    assert probe.transition == Transition(M, CircuitState.OPEN, CircuitState.HALF_OPEN)
    assert breaker.state(M) is CircuitState.HALF_OPEN
    assert not breaker.healthy(M)

    for _ in range(3):  # concurrent requests skip it while the probe is out
        other = breaker.admit(M)
        assert not other.allowed
        assert str(other.refusal) == "circuit half-open: a probe attempt is in flight"
    assert breaker.exclusion(M) is not None


def test_a_probe_that_answers_closes_the_circuit(clock: ManualClock) -> None:
    breaker = open_breaker(clock)
    clock.advance(30)
    breaker.admit(M)

    change = breaker.record(M, Outcome.SUCCESS, probe=True)

    assert change == Transition(M, CircuitState.HALF_OPEN, CircuitState.CLOSED)
    assert breaker.healthy(M)
    assert breaker.admit(M).allowed
    assert not breaker.admit(M).probe
    assert fail(breaker, 2) == [], "closed afresh: the old failures are forgotten"


def test_a_probe_that_fails_reopens_for_another_cool_down(clock: ManualClock) -> None:
    breaker = open_breaker(clock)
    clock.advance(30)
    breaker.admit(M)

    change = breaker.record(M, Outcome.FAILURE, probe=True, retry_after_s=45, cause="timeout: x")

    assert change is not None
    assert (change.before, change.after) == (CircuitState.HALF_OPEN, CircuitState.OPEN)
    assert change.open_until == clock.now() + timedelta(seconds=45)
    assert change.cause == "timeout: x"
    clock.advance(44)
    assert not breaker.admit(M).allowed
    clock.advance(1)
    assert breaker.admit(M).probe


def test_a_probe_that_ends_neither_way_lets_the_next_request_probe(clock: ManualClock) -> None:
    breaker = open_breaker(clock)
    clock.advance(30)
    breaker.admit(M)

    assert breaker.record(M, Outcome.NEUTRAL, probe=True) is None

    assert breaker.state(M) is CircuitState.HALF_OPEN
    again = breaker.admit(M)
    assert (again.allowed, again.probe, again.transition) == (True, True, None)


def test_a_late_attempt_is_not_taken_for_the_probe(clock: ManualClock) -> None:
    breaker = open_breaker(clock)
    clock.advance(30)
    breaker.admit(M)

    assert breaker.record(M, Outcome.SUCCESS) is None, "admitted before the circuit opened"
    assert fail(breaker) == []
    assert breaker.state(M) is CircuitState.HALF_OPEN


def test_models_have_circuits_of_their_own(clock: ManualClock) -> None:
    breaker = open_breaker(clock)

    assert breaker.healthy("balanced-1")
    assert breaker.admit("balanced-1").allowed


def test_disabled_it_never_opens(clock: ManualClock) -> None:
    breaker = CircuitBreaker(clock, BreakerPolicy(enabled=False, failures=1))

    assert fail(breaker, 10) == []
    assert breaker.healthy(M)
    assert breaker.admit(M).allowed


def test_a_new_policy_starts_every_circuit_afresh(clock: ManualClock) -> None:
    breaker = open_breaker(clock)

    breaker.configure(POLICY)
    assert breaker.state(M) is CircuitState.OPEN, "the same policy keeps the state"
    breaker.configure(BreakerPolicy(failures=10))
    assert breaker.healthy(M)
    assert breaker.policy.failures == 10


def test_times_are_rounded_up_to_the_second(clock: ManualClock) -> None:
    moment = clock.now() + timedelta(seconds=1.2)
    assert utc_iso(moment) == "2026-01-15T12:00:02Z"
    assert utc_iso(clock.now()) == "2026-01-15T12:00:00Z"
