"""The in-memory ledger: for tests and single-process use. Nothing survives a restart.

It keeps the same promises as the durable backends: a hold records its call's usage at each
`checkpoint` (which pushes its expiry forward), and a hold whose time-to-live runs out is
settled at that usage, not released. Such a hold's id is remembered with what it was charged,
so a late `settle` (a call that stalled past its hold) charges only the rest.
"""

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
    used_micros: int = 0  # the last checkpoint: charged if the hold expires
    tokens: int = 0


@dataclass
class _Tenant:
    limits: tuple[Limit, ...] | None = None  # None until configured
    latency_target_ms: int = 0
    spent: dict[str, int] = field(default_factory=dict)  # window key -> micro-USD
    holds: dict[str, _Hold] = field(default_factory=dict)  # hold id -> hold
    # Settled hold ids; the value is None once settled for good, or (micros, tokens) already
    # charged when the hold expired, which a late settle tops up.
    settled: dict[str, tuple[int, int] | None] = field(default_factory=dict)
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

    async def seed(self, seeds: Mapping[str, TenantSeed]) -> None:
        # Nothing here can be lost while the process lives: applying the seeds once is enough.
        for tenant, seed in seeds.items():
            await self.configure(tenant, seed.limits, seed.latency_target_ms, only_if_new=True)

    async def state(self, tenant: str) -> BudgetState:
        return self._state(tenant, exclude_hold="")

    async def hold(
        self, tenant: str, hold_id: str, amount_micros: int, *, admit: RateLimit | None = None
    ) -> BudgetState:
        record = self._tenant(tenant)
        if admit is not None:
            self._admit(tenant, record, admit)
        if hold_id in record.settled:
            # Settled already: a late hold must not reserve money nothing will release.
            return self._state(tenant, exclude_hold="")
        check_hold(tenant, self._state(tenant, exclude_hold=hold_id).limits, amount_micros)
        expires_at = self._clock.now() + self._ttl
        held = record.holds.get(hold_id)
        if held is None:
            record.holds[hold_id] = _Hold(amount_micros, expires_at)
        else:  # re-targeted by a fallback: what the call used so far is still owed
            held.amount_micros, held.expires_at = amount_micros, expires_at
        return self._state(tenant, exclude_hold="")

    async def settle(
        self,
        tenant: str,
        hold_id: str,
        actual_micros: int,
        tokens: int = 0,
        *,
        met_target: bool | None = None,
    ) -> None:
        record = self._tenant(tenant)
        charged = (0, 0)
        if hold_id in record.settled:
            previous = record.settled[hold_id]
            if previous is None:
                return
            charged = previous  # settled at its checkpoint when it expired: charge the rest
        record.settled[hold_id] = None
        record.holds.pop(hold_id, None)
        self._charge(
            record, max(0, actual_micros - charged[0]), max(0, tokens - charged[1]), self._now()
        )
        if met_target is not None:
            record.latency_total += 1
            record.latency_met += int(met_target)

    async def checkpoint(self, tenant: str, hold_id: str, used_micros: int, tokens: int) -> None:
        record = self._tenant(tenant)
        self._settle_expired(record, self._now())
        held = record.holds.get(hold_id)
        if held is not None:
            held.used_micros, held.tokens = used_micros, tokens
            held.expires_at = self._now() + self._ttl

    async def ping(self) -> None:
        """Always answers: the store is this process's memory."""

    async def aclose(self) -> None:
        """Nothing to release."""

    def _now(self) -> datetime:
        return self._clock.now()

    def _tenant(self, tenant: str) -> _Tenant:
        return self._tenants.setdefault(tenant, _Tenant())

    def _admit(self, tenant: str, record: _Tenant, rate: RateLimit) -> None:
        """Count one request this minute, or raise RateLimitExceeded counting nothing."""
        now = self._now()
        self._settle_expired(record, now)  # their tokens count towards this minute
        requests, tokens = self._minute(record, now)
        check_admit(tenant, rate, requests, tokens, now)
        record.minute = (minute_key(now), requests + 1, tokens)

    def _state(self, tenant: str, exclude_hold: str) -> BudgetState:
        record = self._tenant(tenant)
        now = self._now()
        self._settle_expired(record, now)
        reserved = sum(h.amount_micros for i, h in record.holds.items() if i != exclude_hold)
        states = limit_states(record.limits or (), record.spent, reserved, now)
        return budget_state(
            tenant, states, record.latency_target_ms, record.latency_met, record.latency_total
        )

    def _settle_expired(self, record: _Tenant, now: datetime) -> None:
        """Settle every expired hold at its last checkpoint (nothing, without one)."""
        for hold_id in [h for h, hold in record.holds.items() if hold.expires_at <= now]:
            held = record.holds.pop(hold_id)
            record.settled[hold_id] = (held.used_micros, held.tokens)
            self._charge(record, held.used_micros, held.tokens, now)

    def _charge(self, record: _Tenant, micros: int, tokens: int, now: datetime) -> None:
        for key in window_keys(now).values():
            record.spent[key] = record.spent.get(key, 0) + micros
        requests, minute_tokens = self._minute(record, now)
        record.minute = (minute_key(now), requests, minute_tokens + tokens)

    @staticmethod
    def _minute(record: _Tenant, now: datetime) -> tuple[int, int]:
        key, requests, tokens = record.minute
        return (requests, tokens) if key == minute_key(now) else (0, 0)
