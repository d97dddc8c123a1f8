"""Settlement: charges the actual cost to every window once, releases the hold, counts tokens."""

from __future__ import annotations

import pytest

from fareway.budgets.ledger import Ledger, Limit, RateLimit
from fareway.budgets.windows import Window
from fareway.core.errors import RateLimitExceeded
from tests.budgets.contract.support import TENANT, admit, figures


async def test_settle_releases_the_hold_and_charges_the_actual_cost(ledger: Ledger) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000), Limit(Window.TOTAL, 10_000)])
    await ledger.hold(TENANT, "h1", 500)

    await ledger.settle(TENANT, "h1", 120)

    assert await figures(ledger) == {"day": (120, 0, 880), "total": (120, 0, 9_880)}
    await ledger.hold(TENANT, "h2", 880)  # the released 380 can be held again


async def test_settle_adds_its_tokens_to_this_minute(ledger: Ledger) -> None:
    rate = RateLimit(tokens_per_minute=1_000)
    await ledger.hold(TENANT, "h1", 500)

    await ledger.settle(TENANT, "h1", 120, tokens=999)
    await admit(ledger, rate)  # 999 < 1,000: still admitted
    await ledger.settle(TENANT, "h2", 1, tokens=1)

    with pytest.raises(RateLimitExceeded) as caught:
        await admit(ledger, rate)
    assert caught.value.limit == "tokens_per_minute"


async def test_settle_is_idempotent_by_hold_id(ledger: Ledger) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])
    await ledger.hold(TENANT, "h1", 500)
    await ledger.hold(TENANT, "h2", 200)

    await ledger.settle(TENANT, "h1", 300, tokens=10)
    await ledger.settle(TENANT, "h1", 300, tokens=10)
    await ledger.settle(TENANT, "h1", 999, tokens=10_000)

    # h1 charged once; h2's hold untouched by h1's repeats; the tokens counted once.
    assert await figures(ledger) == {"day": (300, 200, 500)}
    await admit(ledger, RateLimit(tokens_per_minute=11))


async def test_settle_without_a_hold_still_charges(ledger: Ledger) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])

    await ledger.settle(TENANT, "expired-or-unknown", 250)

    assert await figures(ledger) == {"day": (250, 0, 750)}


async def test_settle_may_charge_past_the_cap(ledger: Ledger) -> None:
    # The provider's bill is the truth even when it outgrew the estimate; the next hold pays.
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])
    await ledger.hold(TENANT, "h1", 900)

    await ledger.settle(TENANT, "h1", 1_200)

    assert await figures(ledger) == {"day": (1_200, 0, 0)}
    await ledger.hold(TENANT, "h2", 0)  # nothing left, but a free call still fits
