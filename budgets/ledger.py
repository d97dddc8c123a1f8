"""The ledger plug-in point: where spend, reservations and limits live.

Every backend (`memory` here; durable and shared ones later) implements `Ledger` and runs the
same contract tests. All amounts are integer micro-USD.

The life of a request: `reserve` an upper bound before calling a model (refused with
BudgetExceeded when any hard cap would be passed), then `settle` to what the provider reported,
which releases the rest. Settling twice is harmless; a reservation never settled expires
after its time-to-live, so a crashed replica's holds do not block the tenant forever.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from fareway.budgets.windows import Window


class OnExceed(StrEnum):
    """What happens at the hard cap."""

    REJECT = "reject"
    CHEAPEST_ONLY = "cheapest_only"


@dataclass(frozen=True)
class Limit:
    """A hard cap on one window, with the fraction above which requests are downgraded."""

    window: Window
    cap_micros: int
    soft_fraction: float = 0.0
    on_exceed: OnExceed = OnExceed.REJECT


@dataclass(frozen=True)
class LimitState:
    """A limit with the current window's figures."""

    limit: Limit
    spent_micros: int
    reserved_micros: int
    resets_at: datetime | None

    @property
    def remaining_micros(self) -> int:
        """What may still be reserved in this window."""
        return max(0, self.limit.cap_micros - self.spent_micros - self.reserved_micros)


@dataclass(frozen=True)
class BudgetState:
    """A tenant's whole budget as it stands now."""

    tenant: str
    limits: tuple[LimitState, ...]
    latency_target_ms: int
    latency_attainment: float

    @property
    def remaining_micros(self) -> int | None:
        """What the tightest window still allows, or None when the tenant is uncapped."""
        return min((s.remaining_micros for s in self.limits), default=None)


class Ledger(Protocol):
    """Holds every tenant's limits, spend and in-flight reservations."""

    async def configure(
        self, tenant: str, limits: Sequence[Limit], latency_target_ms: int | None = None
    ) -> None:
        """Replace a tenant's limits; set its latency target unless None."""
        ...

    async def state(self, tenant: str) -> BudgetState:
        """The tenant's limits with current spend and reservations."""
        ...

    async def reserve(self, tenant: str, request_id: str, amount_micros: int) -> None:
        """Hold `amount_micros` against every cap, or raise BudgetExceeded holding nothing."""
        ...

    async def settle(self, tenant: str, request_id: str, actual_micros: int) -> None:
        """Charge the actual cost and release the reservation; a second call does nothing."""
        ...

    async def record_latency(self, tenant: str, met_target: bool) -> None:
        """Count one request towards the tenant's latency attainment."""
        ...
