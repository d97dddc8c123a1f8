"""State and configuration: the figures a tenant sees, and how limits are set and seeded."""

from __future__ import annotations

import pytest

from fareway.budgets.ledger import Ledger, Limit, OnExceed
from fareway.budgets.windows import Window
from tests.budgets.contract.support import TENANT, count_latency, figures


async def test_state_reports_spent_reserved_and_remaining(ledger: Ledger) -> None:
    await ledger.configure(
        TENANT,
        [
            Limit(Window.DAY, 1_000, soft_fraction=0.8, on_exceed=OnExceed.CHEAPEST_ONLY),
            Limit(Window.MONTH, 3_000),
        ],
    )
    await ledger.settle(TENANT, "done", 250)
    await ledger.hold(TENANT, "in-flight", 100)

    state = await ledger.state(TENANT)

    assert state.tenant == TENANT
    assert await figures(ledger) == {"day": (250, 100, 650), "month": (250, 100, 2_650)}
    assert state.remaining_micros == 650  # the tightest window
    assert state.limits[0].limit == Limit(
        Window.DAY, 1_000, soft_fraction=0.8, on_exceed=OnExceed.CHEAPEST_ONLY
    )


async def test_remaining_never_goes_below_zero(ledger: Ledger) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])
    await ledger.settle(TENANT, "big", 1_500)

    assert (await ledger.state(TENANT)).remaining_micros == 0


async def test_a_tenant_without_limits_is_uncapped(ledger: Ledger) -> None:
    await ledger.hold("newcomer", "h1", 10**12)

    state = await ledger.state("newcomer")

    assert state.limits == ()
    assert state.remaining_micros is None
    assert state.latency_target_ms == 0


async def test_spend_before_a_limit_is_set_still_counts(ledger: Ledger) -> None:
    await ledger.settle(TENANT, "h1", 600)

    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])

    assert await figures(ledger) == {"day": (600, 0, 400)}


async def test_configure_replaces_the_limits(ledger: Ledger) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000), Limit(Window.MONTH, 9_000)])

    await ledger.configure(TENANT, [Limit(Window.TOTAL, 50)])

    assert await figures(ledger) == {"total": (0, 0, 50)}


async def test_configure_with_no_limits_uncaps_the_tenant(ledger: Ledger) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])

    await ledger.configure(TENANT, [])

    assert (await ledger.state(TENANT)).remaining_micros is None
    await ledger.hold(TENANT, "h1", 5_000)


async def test_configure_without_a_latency_target_keeps_the_old_one(ledger: Ledger) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)], latency_target_ms=800)

    await ledger.configure(TENANT, [Limit(Window.DAY, 2_000)])

    state = await ledger.state(TENANT)
    assert state.latency_target_ms == 800
    assert state.limits[0].limit.cap_micros == 2_000


async def test_only_if_new_keeps_an_existing_configuration(ledger: Ledger) -> None:
    # SetBudget changed the tenant; a restart seeding from the config file must not undo it.
    await ledger.configure(TENANT, [Limit(Window.DAY, 5_000)], latency_target_ms=900)

    await ledger.configure(
        TENANT, [Limit(Window.DAY, 1_000)], latency_target_ms=100, only_if_new=True
    )

    state = await ledger.state(TENANT)
    assert [s.limit.cap_micros for s in state.limits] == [5_000]
    assert state.latency_target_ms == 900


async def test_only_if_new_keeps_an_existing_empty_configuration(ledger: Ledger) -> None:
    await ledger.configure(TENANT, [])  # deliberately uncapped

    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)], only_if_new=True)

    assert (await ledger.state(TENANT)).limits == ()


async def test_only_if_new_configures_a_new_tenant(ledger: Ledger) -> None:
    await ledger.configure(
        TENANT, [Limit(Window.DAY, 1_000)], latency_target_ms=700, only_if_new=True
    )

    state = await ledger.state(TENANT)
    assert [s.limit.cap_micros for s in state.limits] == [1_000]
    assert state.latency_target_ms == 700


async def test_only_if_new_configures_a_tenant_known_only_by_its_traffic(ledger: Ledger) -> None:
    # Spend, holds and latency recorded before a tenant was ever configured (it was added to
    # the config file later) do not count as a configuration to keep.
    await ledger.settle(TENANT, "h1", 100)
    await ledger.hold(TENANT, "h2", 50)
    await count_latency(ledger, met_target=True)
    await ledger.state(TENANT)

    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)], only_if_new=True)

    assert await figures(ledger) == {"day": (100, 50, 850)}


async def test_latency_attainment_is_the_share_of_requests_on_target(ledger: Ledger) -> None:
    await ledger.configure(TENANT, [], latency_target_ms=1_500)
    assert (await ledger.state(TENANT)).latency_attainment == 1.0  # nothing measured yet

    for met in (True, True, False, True):
        await count_latency(ledger, met)

    state = await ledger.state(TENANT)
    assert state.latency_target_ms == 1_500
    assert state.latency_attainment == pytest.approx(0.75)


async def test_reconfiguring_keeps_latency_counts(ledger: Ledger) -> None:
    await count_latency(ledger, met_target=False)

    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)], latency_target_ms=200)

    assert (await ledger.state(TENANT)).latency_attainment == 0.0
