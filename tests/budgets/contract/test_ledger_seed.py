"""Seeding: the configured budgets reach the ledger for tenants it does not know, an override
made since (SetBudget) is kept, and a tenant configured with no caps is stored as configured,
so that "no limits" in the store can only mean "the store lost its state"."""

from __future__ import annotations

from fareway.budgets.ledger import Ledger, Limit, TenantSeed
from fareway.budgets.windows import Window
from tests.budgets.contract.support import TENANT, figures


async def test_seed_configures_tenants_the_ledger_does_not_know(ledger: Ledger) -> None:
    await ledger.seed(
        {
            TENANT: TenantSeed((Limit(Window.DAY, 1_000),), latency_target_ms=700),
            "other": TenantSeed((Limit(Window.MONTH, 5_000),)),
        }
    )

    assert await figures(ledger) == {"day": (0, 0, 1_000)}
    assert await figures(ledger, "other") == {"month": (0, 0, 5_000)}
    assert (await ledger.state(TENANT)).latency_target_ms == 700


async def test_seed_keeps_a_configuration_set_since(ledger: Ledger) -> None:
    # SetBudget changed the tenant; a restart seeding from the file must not undo it.
    await ledger.configure(TENANT, [Limit(Window.DAY, 5_000)], latency_target_ms=900)

    await ledger.seed({TENANT: TenantSeed((Limit(Window.DAY, 1_000),), latency_target_ms=100)})

    state = await ledger.state(TENANT)
    assert [s.limit.cap_micros for s in state.limits] == [5_000]
    assert state.latency_target_ms == 900


async def test_a_tenant_seeded_without_caps_counts_as_configured(ledger: Ledger) -> None:
    await ledger.seed({TENANT: TenantSeed(())})

    # Stored as "configured, no limits": a later seed with caps is an override to ignore, not
    # a missing configuration to fill in.
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)], only_if_new=True)

    state = await ledger.state(TENANT)
    assert state.limits == ()
    assert state.remaining_micros is None


async def test_seeding_twice_changes_nothing(ledger: Ledger) -> None:
    seeds = {TENANT: TenantSeed((Limit(Window.DAY, 1_000),))}
    await ledger.seed(seeds)
    await ledger.hold(TENANT, "h1", 400)

    await ledger.seed(seeds)

    assert await figures(ledger) == {"day": (0, 400, 600)}
