"""Time: holds expire after their time-to-live; spend resets with each UTC day and month."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from fareway.budgets.ledger import Ledger, Limit
from fareway.budgets.windows import Window
from fareway.core.clock import ManualClock
from fareway.core.errors import BudgetExceeded
from tests.budgets.contract.support import MONTH_END, TENANT, TTL_S, figures


async def test_holds_expire_after_their_ttl(ledger: Ledger, clock: ManualClock) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])
    await ledger.hold(TENANT, "crashed", 1_000)

    clock.advance(TTL_S - 1)
    assert await figures(ledger) == {"day": (0, 1_000, 0)}
    with pytest.raises(BudgetExceeded):
        await ledger.hold(TENANT, "h2", 1)

    clock.advance(1)
    assert await figures(ledger) == {"day": (0, 0, 1_000)}
    await ledger.hold(TENANT, "h2", 1_000)


async def test_holding_again_restarts_the_ttl(ledger: Ledger, clock: ManualClock) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])
    await ledger.hold(TENANT, "h1", 400)
    clock.advance(TTL_S - 1)

    await ledger.hold(TENANT, "h1", 500)  # a fallback's attempt re-targets the hold
    clock.advance(TTL_S - 1)

    assert await figures(ledger) == {"day": (0, 500, 500)}


async def test_settling_an_expired_hold_still_charges_once(
    ledger: Ledger, clock: ManualClock
) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])
    await ledger.hold(TENANT, "slow", 300)
    clock.advance(TTL_S + 1)

    await ledger.settle(TENANT, "slow", 250)
    await ledger.settle(TENANT, "slow", 250)

    assert await figures(ledger) == {"day": (250, 0, 750)}


async def test_spend_resets_with_the_next_day_but_the_month_keeps_it(
    ledger: Ledger, clock: ManualClock
) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000), Limit(Window.MONTH, 5_000)])
    await ledger.hold(TENANT, "h1", 1_000)
    await ledger.settle(TENANT, "h1", 900)
    with pytest.raises(BudgetExceeded):
        await ledger.hold(TENANT, "h2", 200)

    clock.advance(9 * 3600)  # 16 January, 00:00 UTC

    assert await figures(ledger) == {"day": (0, 0, 1_000), "month": (900, 0, 4_100)}
    state = await ledger.state(TENANT)
    assert [s.resets_at for s in state.limits] == [datetime(2026, 1, 17, tzinfo=UTC), MONTH_END]
    await ledger.hold(TENANT, "h2", 200)


async def test_month_spend_resets_on_the_first_of_the_next_month(
    ledger: Ledger, clock: ManualClock
) -> None:
    await ledger.configure(TENANT, [Limit(Window.MONTH, 5_000), Limit(Window.TOTAL, 10_000)])
    await ledger.settle(TENANT, "h1", 4_000)

    clock.advance((MONTH_END - clock.now()).total_seconds())

    assert await figures(ledger) == {"month": (0, 0, 5_000), "total": (4_000, 0, 6_000)}
    assert [s.resets_at for s in (await ledger.state(TENANT)).limits] == [
        datetime(2026, 3, 1, tzinfo=UTC),
        None,
    ]
