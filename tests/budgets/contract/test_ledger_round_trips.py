"""One round trip each way: a hold that admits the request and returns the budget with the hold
in place, and a settle that counts the latency attainment, each as atomic as the calls they
replace."""

from __future__ import annotations

import pytest

from fareway.budgets.ledger import Ledger, Limit, LimitState, RateLimit
from fareway.budgets.windows import Window
from fareway.core.clock import ManualClock
from fareway.core.errors import BudgetExceeded, RateLimitExceeded
from tests.budgets.contract.support import TENANT, TTL_S, admit, count_latency, figures


def window_figures(limits: tuple[LimitState, ...]) -> dict[str, tuple[int, int, int]]:
    """(spent, reserved, remaining) per window of a returned state, as `figures` reads them."""
    return {
        s.limit.window.value: (s.spent_micros, s.reserved_micros, s.remaining_micros)
        for s in limits
    }


async def test_hold_returns_the_budget_with_the_hold_in_place(ledger: Ledger) -> None:
    await ledger.configure(
        TENANT, [Limit(Window.DAY, 1_000), Limit(Window.MONTH, 5_000)], latency_target_ms=800
    )
    await ledger.settle(TENANT, "earlier", 100, met_target=False)
    await ledger.hold(TENANT, "other", 50)

    state = await ledger.hold(TENANT, "h1", 300)

    assert state.tenant == TENANT
    assert window_figures(state.limits) == {"day": (100, 350, 550), "month": (100, 350, 4_550)}
    assert (state.latency_target_ms, state.latency_attainment) == (800, 0.0)
    assert state == await ledger.state(TENANT)


async def test_a_retargeted_hold_returns_its_new_amount_once(ledger: Ledger) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])
    await ledger.hold(TENANT, "h1", 600)

    state = await ledger.hold(TENANT, "h1", 900)

    assert state.remaining_micros == 100  # 900 replaced 600, not added to it


async def test_hold_for_an_uncapped_tenant_returns_no_limits(ledger: Ledger) -> None:
    state = await ledger.hold(TENANT, "h1", 10**12, admit=RateLimit())

    assert state.limits == ()
    assert state.remaining_micros is None


async def test_a_late_hold_of_a_settled_id_holds_nothing_and_returns_the_budget(
    ledger: Ledger,
) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])
    await ledger.hold(TENANT, "h1", 500)
    await ledger.settle(TENANT, "h1", 200)

    state = await ledger.hold(TENANT, "h1", 500)

    assert window_figures(state.limits) == {"day": (200, 0, 800)}
    assert await figures(ledger) == {"day": (200, 0, 800)}


async def test_a_hold_refused_by_the_rate_limit_holds_and_counts_nothing(ledger: Ledger) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])
    rate = RateLimit(requests_per_minute=1)
    await ledger.hold(TENANT, "h1", 300, admit=rate)

    with pytest.raises(RateLimitExceeded):
        await ledger.hold(TENANT, "h2", 200, admit=rate)
    with pytest.raises(RateLimitExceeded):  # a re-hold that admits leaves its amount too
        await ledger.hold(TENANT, "h1", 600, admit=rate)

    assert await figures(ledger) == {"day": (0, 300, 700)}
    await admit(ledger, RateLimit(requests_per_minute=2))  # the refused ones were not counted


async def test_a_hold_refused_by_the_budget_keeps_its_amount_and_counts_the_request(
    ledger: Ledger,
) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])
    rate = RateLimit(requests_per_minute=2)
    await ledger.hold(TENANT, "h1", 300)

    with pytest.raises(BudgetExceeded) as caught:
        await ledger.hold(TENANT, "h1", 1_001, admit=rate)

    assert caught.value.window == "day"
    assert await figures(ledger) == {"day": (0, 300, 700)}
    # The refused request counted (see Ledger.hold): one more fits the limit of 2, not two.
    await admit(ledger, rate)
    with pytest.raises(RateLimitExceeded):
        await admit(ledger, rate)


async def test_the_rate_limit_is_checked_before_the_budget(ledger: Ledger) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 100)])
    rate = RateLimit(requests_per_minute=1)
    await admit(ledger, rate)

    with pytest.raises(RateLimitExceeded):
        await ledger.hold(TENANT, "h1", 1_000, admit=rate)


async def test_a_hold_without_admit_counts_no_request(ledger: Ledger) -> None:
    rate = RateLimit(requests_per_minute=1)
    for number in range(3):  # a fallback's re-holds are the same request
        await ledger.hold(TENANT, f"h{number}", 10)

    await admit(ledger, rate)


async def test_settle_counts_the_latency_once_per_hold(ledger: Ledger) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)], latency_target_ms=500)
    await ledger.hold(TENANT, "h1", 300)

    await ledger.settle(TENANT, "h1", 100, met_target=False)
    await ledger.settle(TENANT, "h1", 100, met_target=True)  # settled already: counts nothing
    await ledger.settle(TENANT, "h2", 100)  # no target to meet: counts nothing either
    await count_latency(ledger, met_target=True)

    state = await ledger.state(TENANT)
    assert state.latency_attainment == pytest.approx(0.5)  # one missed, one met
    assert window_figures(state.limits) == {"day": (200, 0, 800)}


async def test_the_late_settle_of_an_expired_hold_counts_the_latency(
    ledger: Ledger, clock: ManualClock
) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)], latency_target_ms=500)
    await ledger.hold(TENANT, "stalled", 500)
    await ledger.checkpoint(TENANT, "stalled", 100, 10)
    clock.advance(TTL_S)
    await ledger.state(TENANT)  # expired: settled at its checkpoint, with no latency to count

    await ledger.settle(TENANT, "stalled", 300, 30, met_target=False)
    await ledger.settle(TENANT, "stalled", 300, 30, met_target=False)

    await count_latency(ledger, met_target=True)
    state = await ledger.state(TENANT)
    assert state.latency_attainment == pytest.approx(0.5)
    assert window_figures(state.limits) == {"day": (300, 0, 700)}
