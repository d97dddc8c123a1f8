"""Constants and helpers shared by the ledger contract tests (fixtures live in conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from fareway.budgets.ledger import BudgetState, Ledger, RateLimit

TENANT = "acme"
TTL_S = 60.0
# The clock starts mid-afternoon on 15 January 2026, UTC: the day ends in 9 hours.
START = datetime(2026, 1, 15, 15, 0, tzinfo=UTC)
DAY_END = datetime(2026, 1, 16, tzinfo=UTC)
MONTH_END = datetime(2026, 2, 1, tzinfo=UTC)

# Opens another ledger on the test's store (the `open_ledger` fixture).
OpenLedger = Callable[[], Ledger]


async def figures(ledger: Ledger, tenant: str = TENANT) -> dict[str, tuple[int, int, int]]:
    """(spent, reserved, remaining) per window, keyed by the window's name."""
    state = await ledger.state(tenant)
    return {
        s.limit.window.value: (s.spent_micros, s.reserved_micros, s.remaining_micros)
        for s in state.limits
    }


async def admit(ledger: Ledger, rate: RateLimit, tenant: str = TENANT) -> BudgetState:
    """Admit one request as the engine does, with its first hold (here of nothing, under an id
    of its own)."""
    return await ledger.hold(tenant, uuid.uuid4().hex, 0, admit=rate)


async def count_latency(ledger: Ledger, met_target: bool, tenant: str = TENANT) -> None:
    """Count one request towards the latency attainment as the engine does, with its settle
    (here of nothing, under an id of its own)."""
    await ledger.settle(tenant, uuid.uuid4().hex, 0, met_target=met_target)
