"""The in-memory ledger: reservations against hard caps, settlement, expiry and windows."""

import asyncio
from datetime import UTC, datetime

import pytest

from fareway.budgets.ledger import Limit
from fareway.budgets.memory import MemoryLedger
from fareway.budgets.windows import Window
from fareway.core.clock import ManualClock
from fareway.core.errors import BudgetExceeded

TENANT = "acme"
TTL_S = 60.0
# The clock starts mid-afternoon on 15 January 2026, UTC: the day ends in 9 hours.
START = datetime(2026, 1, 15, 15, 0, tzinfo=UTC)
DAY_END = datetime(2026, 1, 16, tzinfo=UTC)
MONTH_END = datetime(2026, 2, 1, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def ledger(clock: ManualClock) -> MemoryLedger:
    return MemoryLedger(clock, reservation_ttl_s=TTL_S)


async def figures(ledger: MemoryLedger) -> dict[str, tuple[int, int, int]]:
    """(spent, reserved, remaining) per window."""
    state = await ledger.state(TENANT)
    return {
        s.limit.window.value: (s.spent_micros, s.reserved_micros, s.remaining_micros)
        for s in state.limits
    }


async def test_reserve_under_the_cap_is_held(ledger: MemoryLedger) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])

    await ledger.reserve(TENANT, "r1", 400)

    assert await figures(ledger) == {"day": (0, 400, 600)}


async def test_reserve_up_to_exactly_the_cap_is_allowed(ledger: MemoryLedger) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])

    await ledger.reserve(TENANT, "r1", 1_000)

    assert (await ledger.state(TENANT)).remaining_micros == 0


async def test_reserve_past_the_day_cap_names_the_day_window(ledger: MemoryLedger) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000), Limit(Window.MONTH, 50_000)])
    await ledger.reserve(TENANT, "r1", 700)

    with pytest.raises(BudgetExceeded) as caught:
        await ledger.reserve(TENANT, "r2", 301)

    assert caught.value.tenant == TENANT
    assert caught.value.window == "day"
    assert caught.value.resets_at == DAY_END
    assert "300" in str(caught.value)  # what is left


async def test_reserve_past_the_month_cap_names_the_month_window(ledger: MemoryLedger) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 50_000), Limit(Window.MONTH, 1_000)])

    with pytest.raises(BudgetExceeded) as caught:
        await ledger.reserve(TENANT, "r1", 1_001)

    assert caught.value.window == "month"
    assert caught.value.resets_at == MONTH_END


async def test_total_cap_never_resets(ledger: MemoryLedger) -> None:
    await ledger.configure(TENANT, [Limit(Window.TOTAL, 100)])

    with pytest.raises(BudgetExceeded) as caught:
        await ledger.reserve(TENANT, "r1", 101)

    assert caught.value.window == "total"
    assert caught.value.resets_at is None


async def test_refused_reservation_holds_nothing(ledger: MemoryLedger) -> None:
    # The day cap would allow it, the month cap does not: no window may keep a partial hold.
    await ledger.configure(TENANT, [Limit(Window.DAY, 5_000), Limit(Window.MONTH, 1_000)])

    with pytest.raises(BudgetExceeded):
        await ledger.reserve(TENANT, "r1", 2_000)

    assert await figures(ledger) == {"day": (0, 0, 5_000), "month": (0, 0, 1_000)}


async def test_concurrent_reservations_never_exceed_the_cap(ledger: MemoryLedger) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])

    results = await asyncio.gather(
        *(ledger.reserve(TENANT, f"r{i}", 30) for i in range(100)), return_exceptions=True
    )

    granted = [r for r in results if r is None]
    refused = [r for r in results if isinstance(r, BudgetExceeded)]
    assert len(granted) + len(refused) == 100
    assert len(granted) == 33  # 33 x 30 = 990; a 34th would make 1,020
    assert await figures(ledger) == {"day": (0, 990, 10)}


async def test_concurrent_reserve_and_settle_keep_spend_under_the_cap(
    ledger: MemoryLedger,
) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])

    async def request(i: int) -> None:
        await ledger.reserve(TENANT, f"r{i}", 100)
        await asyncio.sleep(0)
        await ledger.settle(TENANT, f"r{i}", 100)

    await asyncio.gather(*(request(i) for i in range(25)), return_exceptions=True)

    spent, reserved, _ = (await figures(ledger))["day"]
    assert spent <= 1_000
    assert reserved == 0


async def test_settle_releases_the_hold_and_charges_the_actual_cost(
    ledger: MemoryLedger,
) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])
    await ledger.reserve(TENANT, "r1", 500)

    await ledger.settle(TENANT, "r1", 120)

    assert await figures(ledger) == {"day": (120, 0, 880)}
    await ledger.reserve(TENANT, "r2", 880)  # the released 380 can be reserved again


async def test_settle_is_idempotent_by_request_id(ledger: MemoryLedger) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])
    await ledger.reserve(TENANT, "r1", 500)
    await ledger.reserve(TENANT, "r2", 200)

    await ledger.settle(TENANT, "r1", 300)
    await ledger.settle(TENANT, "r1", 300)
    await ledger.settle(TENANT, "r1", 999)

    # r1 charged once; r2's hold untouched by r1's repeats.
    assert await figures(ledger) == {"day": (300, 200, 500)}


async def test_settle_without_a_reservation_still_charges(ledger: MemoryLedger) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])

    await ledger.settle(TENANT, "expired-or-unknown", 250)

    assert await figures(ledger) == {"day": (250, 0, 750)}


async def test_reservations_expire_after_their_ttl(
    ledger: MemoryLedger, clock: ManualClock
) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])
    await ledger.reserve(TENANT, "crashed", 1_000)

    clock.advance(TTL_S - 1)
    assert await figures(ledger) == {"day": (0, 1_000, 0)}
    with pytest.raises(BudgetExceeded):
        await ledger.reserve(TENANT, "r2", 1)

    clock.advance(1)
    assert await figures(ledger) == {"day": (0, 0, 1_000)}
    await ledger.reserve(TENANT, "r2", 1_000)


async def test_spend_resets_with_the_next_day_but_the_month_keeps_it(
    ledger: MemoryLedger, clock: ManualClock
) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000), Limit(Window.MONTH, 5_000)])
    await ledger.reserve(TENANT, "r1", 1_000)
    await ledger.settle(TENANT, "r1", 900)
    with pytest.raises(BudgetExceeded):
        await ledger.reserve(TENANT, "r2", 200)

    clock.advance(9 * 3600)  # 16 January, 00:00 UTC

    assert await figures(ledger) == {"day": (0, 0, 1_000), "month": (900, 0, 4_100)}
    state = await ledger.state(TENANT)
    assert [s.resets_at for s in state.limits] == [datetime(2026, 1, 17, tzinfo=UTC), MONTH_END]
    await ledger.reserve(TENANT, "r2", 200)


async def test_month_spend_resets_on_the_first_of_the_next_month(
    ledger: MemoryLedger, clock: ManualClock
) -> None:
    await ledger.configure(TENANT, [Limit(Window.MONTH, 5_000), Limit(Window.TOTAL, 10_000)])
    await ledger.settle(TENANT, "r1", 4_000)

    clock.advance((MONTH_END - clock.now()).total_seconds())

    assert await figures(ledger) == {"month": (0, 0, 5_000), "total": (4_000, 0, 6_000)}


async def test_state_reports_spent_reserved_and_remaining(ledger: MemoryLedger) -> None:
    await ledger.configure(
        TENANT, [Limit(Window.DAY, 1_000, soft_fraction=0.8), Limit(Window.MONTH, 3_000)]
    )
    await ledger.settle(TENANT, "done", 250)
    await ledger.reserve(TENANT, "in-flight", 100)

    state = await ledger.state(TENANT)

    assert state.tenant == TENANT
    assert await figures(ledger) == {"day": (250, 100, 650), "month": (250, 100, 2_650)}
    assert state.remaining_micros == 650  # the tightest window
    assert state.limits[0].limit.soft_fraction == 0.8


async def test_a_tenant_without_limits_is_uncapped(ledger: MemoryLedger) -> None:
    await ledger.reserve("newcomer", "r1", 10**12)

    state = await ledger.state("newcomer")

    assert state.limits == ()
    assert state.remaining_micros is None


async def test_spend_before_a_limit_is_set_still_counts(ledger: MemoryLedger) -> None:
    await ledger.settle(TENANT, "r1", 600)

    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])

    assert await figures(ledger) == {"day": (600, 0, 400)}


async def test_latency_attainment_is_the_share_of_requests_on_target(
    ledger: MemoryLedger,
) -> None:
    await ledger.configure(TENANT, [], latency_target_ms=1_500)
    assert (await ledger.state(TENANT)).latency_attainment == 1.0  # nothing measured yet

    for met in (True, True, False, True):
        await ledger.record_latency(TENANT, met)

    state = await ledger.state(TENANT)
    assert state.latency_target_ms == 1_500
    assert state.latency_attainment == pytest.approx(0.75)


async def test_configure_without_a_latency_target_keeps_the_old_one(
    ledger: MemoryLedger,
) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)], latency_target_ms=800)

    await ledger.configure(TENANT, [Limit(Window.DAY, 2_000)])

    state = await ledger.state(TENANT)
    assert state.latency_target_ms == 800
    assert state.limits[0].limit.cap_micros == 2_000
