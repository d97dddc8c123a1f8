"""The in-memory ledger: for tests and single-process use. Nothing survives a restart."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fareway.budgets.ledger import BudgetState, Limit, LimitState
from fareway.budgets.windows import Window, window_bounds, window_key
from fareway.core.clock import Clock
from fareway.core.errors import BudgetExceeded


@dataclass
class _Hold:
    amount_micros: int
    expires_at: datetime


@dataclass
class _Tenant:
    limits: tuple[Limit, ...] = ()
    latency_target_ms: int = 0
    spent: dict[str, int] = field(default_factory=dict)  # window key -> micro-USD
    holds: dict[str, _Hold] = field(default_factory=dict)  # request id -> hold
    settled: set[str] = field(default_factory=set)
    latency_met: int = 0
    latency_total: int = 0


class MemoryLedger:
    """A Ledger in a dict. Safe under asyncio concurrency: no method awaits mid-update."""

    def __init__(self, clock: Clock, reservation_ttl_s: float = 900.0) -> None:
        self._clock = clock
        self._ttl = timedelta(seconds=reservation_ttl_s)
        self._tenants: dict[str, _Tenant] = {}

    def _tenant(self, tenant: str) -> _Tenant:
        return self._tenants.setdefault(tenant, _Tenant())

    async def configure(
        self, tenant: str, limits: Sequence[Limit], latency_target_ms: int | None = None
    ) -> None:
        record = self._tenant(tenant)
        record.limits = tuple(limits)
        if latency_target_ms is not None:
            record.latency_target_ms = latency_target_ms

    async def state(self, tenant: str) -> BudgetState:
        record = self._tenant(tenant)
        now = self._clock.now()
        self._expire(record, now)
        reserved = sum(h.amount_micros for h in record.holds.values())
        states = tuple(
            LimitState(
                limit=limit,
                spent_micros=record.spent.get(window_key(limit.window, now), 0),
                reserved_micros=reserved,
                resets_at=window_bounds(limit.window, now)[1],
            )
            for limit in record.limits
        )
        attainment = record.latency_met / record.latency_total if record.latency_total else 1.0
        return BudgetState(tenant, states, record.latency_target_ms, attainment)

    async def reserve(self, tenant: str, request_id: str, amount_micros: int) -> None:
        state = await self.state(tenant)
        for limit_state in state.limits:
            if amount_micros > limit_state.remaining_micros:
                limit = limit_state.limit
                raise BudgetExceeded(
                    f"tenant '{tenant}' has {limit_state.remaining_micros} micro-USD left of its "
                    f"{limit.window.value} cap of {limit.cap_micros}; this request may cost "
                    f"up to {amount_micros}",
                    tenant=tenant,
                    window=limit.window.value,
                    resets_at=limit_state.resets_at,
                )
        record = self._tenant(tenant)
        held = record.holds.get(request_id)
        total = amount_micros + (held.amount_micros if held else 0)
        record.holds[request_id] = _Hold(total, self._clock.now() + self._ttl)

    async def settle(self, tenant: str, request_id: str, actual_micros: int) -> None:
        record = self._tenant(tenant)
        if request_id in record.settled:
            return
        record.settled.add(request_id)
        record.holds.pop(request_id, None)
        now = self._clock.now()
        # Every window is counted, capped or not, so that a limit set later starts from the truth.
        for window in Window:
            key = window_key(window, now)
            record.spent[key] = record.spent.get(key, 0) + actual_micros

    async def record_latency(self, tenant: str, met_target: bool) -> None:
        record = self._tenant(tenant)
        record.latency_total += 1
        record.latency_met += int(met_target)

    @staticmethod
    def _expire(record: _Tenant, now: datetime) -> None:
        for request_id in [r for r, h in record.holds.items() if h.expires_at <= now]:
            del record.holds[request_id]
