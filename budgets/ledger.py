"""The ledger plug-in point: where spend, reservations, limits and rate counters live.

Every backend (`memory`, `sqlite`, `redis`, `postgres`) implements `Ledger` and runs the same
contract tests (tests/budgets/contract). All amounts are integer micro-USD.

The life of a request: `hold` an upper bound before each model attempt (refused with
BudgetExceeded when any hard cap would be passed; a later `hold` for the same id replaces the
earlier amount, so a fallback re-targets the hold instead of stacking a second one), then
`settle` once to what the provider reported, which releases the hold. Settling twice is
harmless; a hold never settled expires after the ledger's time-to-live, so a crashed replica's
holds do not block the tenant forever. Hold ids are made per call by the server, never taken
from the client, so a client reusing a request id cannot make a charge vanish.

Two round trips per request, each one atomic step of the store (one transaction, one script):
the first `hold` also admits the request against the tenant's rate limit (`admit=`) and
returns the budget as it stands with the hold taken, which is what the request reports and
the utilization gauge shows; `settle` also counts the request towards the latency attainment
(`met_target=`). So a request costs the store no separate admission, state read or latency
count. `state` remains for readers that hold nothing (routing, GetBudget).

While a call streams, `checkpoint` records what it has used so far and pushes the hold's
expiry forward: a hold whose process dies (or whose time-to-live runs out) is settled at its
last checkpoint instead of being released, so a crash loses at most one checkpoint of charges.
Such a charge lands in the windows current when the ledger notices the expiry.

Configured budgets reach the ledger through `seed`; a backend that can lose its state (a
Redis restarted empty) re-applies them by itself before it answers for a seeded tenant, so a
tenant with configured caps is never served uncapped. A store that cannot be reached raises
LedgerUnavailable from every method.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

from fareway.budgets.windows import Window
from fareway.core.errors import BudgetExceeded, RateLimitExceeded


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


@dataclass(frozen=True)
class RateLimit:
    """Per-tenant requests and tokens per UTC minute; None means unlimited."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None


@dataclass(frozen=True)
class TenantSeed:
    """A tenant's budget as the configuration gives it."""

    limits: tuple[Limit, ...]
    latency_target_ms: int = 0


class Ledger(Protocol):
    """Holds every tenant's limits, spend, in-flight holds and rate counters."""

    async def configure(
        self,
        tenant: str,
        limits: Sequence[Limit],
        latency_target_ms: int | None = None,
        *,
        only_if_new: bool = False,
    ) -> None:
        """Replace a tenant's limits and set its latency target unless None. With
        `only_if_new`, do nothing for a tenant the ledger already knows: configuration seeds a
        durable ledger, and SetBudget's later changes survive restarts."""
        ...

    async def seed(self, seeds: Mapping[str, TenantSeed]) -> None:
        """Remember the configured budgets and apply each one to a tenant the ledger does not
        know yet (as `configure(only_if_new=True)`). Replaces the seeds of an earlier call. A
        backend that can lose its state re-applies them whenever it finds a seeded tenant
        missing, before it holds, admits or reports for that tenant."""
        ...

    async def state(self, tenant: str) -> BudgetState:
        """The tenant's limits with current spend and live holds."""
        ...

    async def hold(
        self, tenant: str, hold_id: str, amount_micros: int, *, admit: RateLimit | None = None
    ) -> BudgetState:
        """Set this hold to `amount_micros`, checked against every cap net of its own previous
        amount, and return the tenant's budget with the hold in place. Atomic across processes.

        With `admit`, first count one request against this minute's rate limits: when the
        requests, or the tokens settled this minute, have reached their limit, raise
        RateLimitExceeded, counting and holding nothing. On BudgetExceeded the previous amount
        stays, but an admitted request stays counted: it reached the ledger as one, and a
        tenant past its budget is held to its request rate like any other (as when admission
        was a call of its own). A hold of an id settled already holds nothing."""
        ...

    async def settle(
        self,
        tenant: str,
        hold_id: str,
        actual_micros: int,
        tokens: int = 0,
        *,
        met_target: bool | None = None,
    ) -> None:
        """Charge `actual_micros` to every window, add `tokens` to this minute's token count,
        and release the hold; with `met_target` (not None), count the request towards the
        tenant's latency attainment too. A second call with the same id does nothing, the
        latency count included; a settle of a hold that expired (and was settled at its last
        checkpoint then) charges only the rest, and counts the latency then."""
        ...

    async def checkpoint(self, tenant: str, hold_id: str, used_micros: int, tokens: int) -> None:
        """Record what the hold's call has used so far (cost and tokens, cumulative) and push
        its expiry a full time-to-live ahead. Should its process die, or the hold expire, the
        hold is settled at these figures instead of being released. Nothing for a hold that is
        settled or gone."""
        ...

    async def ping(self) -> None:
        """Return when the store answers; raise LedgerUnavailable when it does not."""
        ...

    async def aclose(self) -> None:
        """Release connections and files."""
        ...


def budget_exceeded(tenant: str, state: LimitState, amount_micros: int) -> BudgetExceeded:
    """The refusal every backend raises when `amount_micros` does not fit `state`'s window."""
    limit = state.limit
    return BudgetExceeded(
        f"tenant '{tenant}' has {state.remaining_micros} micro-USD left of its "
        f"{limit.window.value} cap of {limit.cap_micros}; this request may cost up to "
        f"{amount_micros}",
        tenant=tenant,
        window=limit.window.value,
        resets_at=state.resets_at,
    )


def minute_key(now: datetime) -> str:
    """The rate-limit bucket `now` falls in, e.g. `minute:2026-11-27T23:05`."""
    return f"minute:{now.astimezone(UTC):%Y-%m-%dT%H:%M}"


def rate_limit_exceeded(
    tenant: str, limit_name: str, limit: int, now: datetime
) -> RateLimitExceeded:
    """The refusal every backend raises when a per-minute limit is used up."""
    retry_after_s = 60 - now.second - now.microsecond / 1e6
    return RateLimitExceeded(
        f"tenant '{tenant}' reached its {limit_name} limit of {limit}; retry in "
        f"{retry_after_s:.0f} s",
        tenant=tenant,
        limit=limit_name,
        retry_after_s=retry_after_s,
    )
