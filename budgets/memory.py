"""The in-memory ledger: for tests and single-process use. Nothing survives a restart."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fareway.budgets.accounting import (
    budget_state,
    check_admit,
    check_hold,
    limit_states,
    window_keys,
)
from fareway.budgets.ledger import BudgetState, Limit, RateLimit, TenantSeed, minute_key
from fareway.core.clock import Clock


@dataclass
class _Hold:
    amount_micros: int
    expires_at: datetime


@dataclass
class _Tenant:
    limits: tuple[Limit, ...] | None = None  # None until configured
    latency_target_ms: int = 0
    spent: dict[str, int] = field(default_factory=dict)  # window key -> micro-USD
    holds: dict[str, _Hold] = field(default_factory=dict)  # hold id -> hold
    settled: set[str] = field(default_factory=set)
    minute: tuple[str, int, int] = ("", 0, 0)  # (minute key, requests, tokens)
    latency_met: int = 0
    latency_total: int = 0


class MemoryLedger:
    """A Ledger in a dict. Safe under asyncio concurrency: no method awaits mid-update."""

    def __init__(self, clock: Clock, hold_ttl_s: float = 900.0) -> None:
        self._clock = clock
        self._ttl = timedelta(seconds=hold_ttl_s)
        self._tenants: dict[str, _Tenant] = {}

    async def configure(
        self,
        tenant: str,
        limits: Sequence[Limit],
        latency_target_ms: int | None = None,
        *,
        only_if_new: bool = False,
    ) -> None:
        if only_if_new and self._tenant(tenant).limits is not None:
            return
        record = self._tenant(tenant)
        record.limits = tuple(limits)
        if latency_target_ms is not None:
            record.latency_target_ms = latency_target_ms

    async def state(self, tenant: str) -> BudgetState:
        return self._state(tenant, exclude_hold="")

    async def hold(self, tenant: str, hold_id: str, amount_micros: int) -> None:
        record = self._tenant(tenant)
        if hold_id in record.settled:
            return  # settled already: a late hold must not reserve money nothing will release
        check_hold(tenant, self._state(tenant, exclude_hold=hold_id).limits, amount_micros)
        record.holds[hold_id] = _Hold(amount_micros, self._clock.now() + self._ttl)

    async def settle(self, tenant: str, hold_id: str, actual_micros: int, tokens: int = 0) -> None:
        record = self._tenant(tenant)
        if hold_id in record.settled:
            return
        record.settled.add(hold_id)
        record.holds.pop(hold_id, None)
        now = self._clock.now()
        for key in window_keys(now).values():
            record.spent[key] = record.spent.get(key, 0) + actual_micros
        requests, minute_tokens = self._minute(record, now)
        record.minute = (minute_key(now), requests, minute_tokens + tokens)

    async def seed(self, seeds: Mapping[str, TenantSeed]) -> None:
        for tenant, seed in seeds.items():
            await self.configure(tenant, seed.limits, seed.latency_target_ms, only_if_new=True)

    async def checkpoint(self, tenant: str, hold_id: str, used_micros: int, tokens: int) -> None:
        """Not yet recorded: the hold keeps its amount and expiry."""

    async def ping(self) -> None:
        """Nothing checked yet."""

    async def admit(self, tenant: str, rate: RateLimit) -> None:
        record = self._tenant(tenant)
        now = self._clock.now()
        requests, tokens = self._minute(record, now)
        check_admit(tenant, rate, requests, tokens, now)
        record.minute = (minute_key(now), requests + 1, tokens)

    async def record_latency(self, tenant: str, met_target: bool) -> None:
        record = self._tenant(tenant)
        record.latency_total += 1
        record.latency_met += int(met_target)

    async def aclose(self) -> None:
        """Nothing to release."""

    def _tenant(self, tenant: str) -> _Tenant:
        return self._tenants.setdefault(tenant, _Tenant())

    def _state(self, tenant: str, exclude_hold: str) -> BudgetState:
        record = self._tenant(tenant)
        now = self._clock.now()
        for hold_id in [h for h, hold in record.holds.items() if hold.expires_at <= now]:
            del record.holds[hold_id]
        reserved = sum(h.amount_micros for i, h in record.holds.items() if i != exclude_hold)
        states = limit_states(record.limits or (), record.spent, reserved, now)
        return budget_state(
            tenant, states, record.latency_target_ms, record.latency_met, record.latency_total
        )

    @staticmethod
    def _minute(record: _Tenant, now: datetime) -> tuple[int, int]:
        key, requests, tokens = record.minute
        return (requests, tokens) if key == minute_key(now) else (0, 0)
