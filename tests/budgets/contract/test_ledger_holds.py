"""Holds: checked against every window's cap, replaced (not stacked) per hold id, refused
without holding anything."""

from __future__ import annotations

import pytest

from fareway.budgets.ledger import Ledger, Limit
from fareway.budgets.windows import Window
from fareway.core.errors import BudgetExceeded
from tests.budgets.contract.support import DAY_END, MONTH_END, TENANT, figures


async def test_hold_under_the_cap_is_reserved(ledger: Ledger) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])

    await ledger.hold(TENANT, "h1", 400)

    assert await figures(ledger) == {"day": (0, 400, 600)}


async def test_hold_up_to_exactly_the_cap_is_allowed(ledger: Ledger) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])

    await ledger.hold(TENANT, "h1", 1_000)

    assert (await ledger.state(TENANT)).remaining_micros == 0


async def test_hold_past_the_day_cap_names_the_day_window(ledger: Ledger) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000), Limit(Window.MONTH, 50_000)])
    await ledger.hold(TENANT, "h1", 700)

    with pytest.raises(BudgetExceeded) as caught:
        await ledger.hold(TENANT, "h2", 301)

    assert caught.value.tenant == TENANT
    assert caught.value.window == "day"
    assert caught.value.resets_at == DAY_END
    assert "300 micro-USD left" in str(caught.value)


async def test_hold_past_the_month_cap_names_the_month_window(ledger: Ledger) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 50_000), Limit(Window.MONTH, 1_000)])

    with pytest.raises(BudgetExceeded) as caught:
        await ledger.hold(TENANT, "h1", 1_001)

    assert caught.value.window == "month"
    assert caught.value.resets_at == MONTH_END


async def test_total_cap_never_resets(ledger: Ledger) -> None:
    await ledger.configure(TENANT, [Limit(Window.TOTAL, 100)])

    with pytest.raises(BudgetExceeded) as caught:
        await ledger.hold(TENANT, "h1", 101)

    assert caught.value.window == "total"
    assert caught.value.resets_at is None


async def test_refused_hold_holds_nothing_in_any_window(ledger: Ledger) -> None:
    # The day cap would allow it, the month cap does not: no window may keep a partial hold.
    await ledger.configure(TENANT, [Limit(Window.DAY, 5_000), Limit(Window.MONTH, 1_000)])

    with pytest.raises(BudgetExceeded):
        await ledger.hold(TENANT, "h1", 2_000)

    assert await figures(ledger) == {"day": (0, 0, 5_000), "month": (0, 0, 1_000)}


async def test_holding_the_same_id_again_replaces_the_amount(ledger: Ledger) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])
    await ledger.hold(TENANT, "h1", 600)

    # 900 fits only because it replaces the 600 rather than adding to it.
    await ledger.hold(TENANT, "h1", 900)
    assert await figures(ledger) == {"day": (0, 900, 100)}

    await ledger.hold(TENANT, "h1", 200)  # a fallback to a cheaper model gives money back
    assert await figures(ledger) == {"day": (0, 200, 800)}


async def test_refused_re_hold_keeps_the_previous_amount(ledger: Ledger) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])
    await ledger.hold(TENANT, "h1", 300)
    await ledger.hold(TENANT, "h2", 500)

    with pytest.raises(BudgetExceeded):
        await ledger.hold(TENANT, "h1", 501)

    assert await figures(ledger) == {"day": (0, 800, 200)}


async def test_hold_after_its_settle_holds_nothing(ledger: Ledger) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])
    await ledger.hold(TENANT, "h1", 500)
    await ledger.settle(TENANT, "h1", 100)

    # A late retry of the hold must not reserve money that no settle will ever release.
    await ledger.hold(TENANT, "h1", 500)

    assert await figures(ledger) == {"day": (100, 0, 900)}


async def test_holds_of_one_tenant_do_not_touch_another(ledger: Ledger) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])
    await ledger.configure("other", [Limit(Window.DAY, 1_000)])

    await ledger.hold(TENANT, "h1", 1_000)
    await ledger.hold("other", "h1", 1_000)  # the same hold id under another tenant

    assert await figures(ledger, "other") == {"day": (0, 1_000, 0)}
    await ledger.settle(TENANT, "h1", 10)
    assert await figures(ledger, "other") == {"day": (0, 1_000, 0)}
