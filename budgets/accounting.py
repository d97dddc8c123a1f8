"""The bookkeeping every ledger backend shares, so that memory, sqlite and redis agree to the
micro-USD: which window keys a charge lands in, how stored figures become a `BudgetState`, and
when a hold or a request is refused.

Backends store figures their own way; they decide with these functions, so a refusal reads
the same whichever backend raised it. (Redis decides inside Lua for atomicity and comes back
here only to build the error.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

from fareway.budgets.ledger import (
    BudgetState,
    Limit,
    LimitState,
    RateLimit,
    budget_exceeded,
    rate_limit_exceeded,
)
from fareway.budgets.windows import Window, window_bounds, window_key

# How long a settled hold id is remembered. Long enough to absorb any retry of a settle and any
# late `hold` of the same id (both arrive within a hold's time-to-live, minutes); short enough
# that the markers do not pile up forever.
SETTLED_RETENTION = timedelta(days=3)


def window_keys(now: datetime) -> dict[Window, str]:
    """The key of every window containing `now`: a charge is counted in all of them, capped or
    not, so that a limit set later starts from the truth."""
    return {window: window_key(window, now) for window in Window}


def limit_state(limit: Limit, spent_micros: int, reserved_micros: int, now: datetime) -> LimitState:
    """One limit with its current window's figures."""
    return LimitState(
        limit=limit,
        spent_micros=spent_micros,
        reserved_micros=reserved_micros,
        resets_at=window_bounds(limit.window, now)[1],
    )


def limit_states(
    limits: Iterable[Limit], spent_by_key: Mapping[str, int], reserved_micros: int, now: datetime
) -> tuple[LimitState, ...]:
    """Every limit with its figures; `spent_by_key` maps window keys to settled spend."""
    return tuple(
        limit_state(limit, spent_by_key.get(window_key(limit.window, now), 0), reserved_micros, now)
        for limit in limits
    )


def budget_state(
    tenant: str,
    states: tuple[LimitState, ...],
    latency_target_ms: int,
    latency_met: int,
    latency_total: int,
) -> BudgetState:
    """The whole picture; attainment is 1.0 until something was measured (nothing missed yet)."""
    attainment = latency_met / latency_total if latency_total else 1.0
    return BudgetState(tenant, states, latency_target_ms, attainment)


def check_hold(tenant: str, states: Iterable[LimitState], amount_micros: int) -> None:
    """Raise BudgetExceeded for the first window `amount_micros` does not fit. `states` must
    already leave out the hold's own previous amount, which the new amount replaces."""
    for state in states:
        if amount_micros > state.remaining_micros:
            raise budget_exceeded(tenant, state, amount_micros)


def check_admit(tenant: str, rate: RateLimit, requests: int, tokens: int, now: datetime) -> None:
    """Raise RateLimitExceeded when this minute's requests, or the tokens settled this minute,
    have reached their limit; requests are checked first."""
    if rate.requests_per_minute is not None and requests >= rate.requests_per_minute:
        raise rate_limit_exceeded(tenant, "requests_per_minute", rate.requests_per_minute, now)
    if rate.tokens_per_minute is not None and tokens >= rate.tokens_per_minute:
        raise rate_limit_exceeded(tenant, "tokens_per_minute", rate.tokens_per_minute, now)


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the Unix epoch: how durable backends store instants."""
    return int(moment.astimezone(UTC).timestamp() * 1000)
