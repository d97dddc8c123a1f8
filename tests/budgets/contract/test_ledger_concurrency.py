"""Concurrency: holds racing for the same cap never push spend plus holds past it, within one
ledger and across ledgers sharing a store (separate connections, as separate replicas have)."""

from __future__ import annotations

import asyncio

import pytest

from fareway.budgets.ledger import BudgetState, Ledger, Limit
from fareway.budgets.windows import Window
from fareway.core.errors import BudgetExceeded
from tests.budgets.contract.support import TENANT, OpenLedger, figures

# The backends whose ledgers, opened separately, share one store.
SHARED_STORES = [
    "sqlite",
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("postgres", marks=pytest.mark.postgres),
]


async def test_concurrent_holds_grant_exactly_what_the_cap_affords(ledger: Ledger) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 2_000)])

    results = await asyncio.gather(
        *(ledger.hold(TENANT, f"h{i}", 30) for i in range(200)), return_exceptions=True
    )

    granted = [r for r in results if isinstance(r, BudgetState)]
    refused = [r for r in results if isinstance(r, BudgetExceeded)]
    assert len(granted) + len(refused) == 200
    assert len(granted) == 66  # 66 x 30 = 1,980; a 67th would make 2,010
    assert await figures(ledger) == {"day": (0, 1_980, 20)}


async def test_concurrent_holds_and_settles_keep_spend_under_the_cap(ledger: Ledger) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])

    async def request(i: int) -> None:
        await ledger.hold(TENANT, f"h{i}", 100)
        await asyncio.sleep(0)
        await ledger.settle(TENANT, f"h{i}", 100)

    results = await asyncio.gather(*(request(i) for i in range(40)), return_exceptions=True)

    assert all(r is None or isinstance(r, BudgetExceeded) for r in results)
    assert await figures(ledger) == {"day": (1_000, 0, 0)}  # exactly ten settled


@pytest.mark.parametrize("ledger_kind", SHARED_STORES)
async def test_two_ledgers_on_one_store_share_the_cap(open_ledger: OpenLedger) -> None:
    first, second = open_ledger(), open_ledger()
    await first.configure(TENANT, [Limit(Window.DAY, 1_000)])

    results = await asyncio.gather(
        *(
            ledger.hold(TENANT, f"{n}-{i}", 30)
            for i in range(100)
            for n, ledger in enumerate((first, second))
        ),
        return_exceptions=True,
    )

    assert all(isinstance(r, BudgetState | BudgetExceeded) for r in results)
    assert sum(isinstance(r, BudgetState) for r in results) == 33  # 33 x 30 = 990 across both
    assert await figures(first) == await figures(second) == {"day": (0, 990, 10)}


@pytest.mark.parametrize("ledger_kind", SHARED_STORES)
async def test_a_settle_on_one_ledger_is_seen_by_the_other(open_ledger: OpenLedger) -> None:
    first, second = open_ledger(), open_ledger()
    await first.configure(TENANT, [Limit(Window.DAY, 1_000)])
    await first.hold(TENANT, "h1", 600)

    await second.settle(TENANT, "h1", 400)
    await second.settle(TENANT, "h1", 400)
    await first.settle(TENANT, "h1", 400)

    assert await figures(first) == {"day": (400, 0, 600)}
