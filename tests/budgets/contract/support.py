"""Constants and helpers shared by the ledger contract tests (fixtures live in conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from fareway.budgets.ledger import Ledger

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
