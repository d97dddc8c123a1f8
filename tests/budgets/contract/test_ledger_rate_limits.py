"""Rate limits: requests per UTC minute counted by a hold that admits, tokens per minute by
settle."""

from __future__ import annotations

import pytest

from fareway.budgets.ledger import Ledger, RateLimit
from fareway.core.clock import ManualClock
from fareway.core.errors import RateLimitExceeded
from tests.budgets.contract.support import TENANT, admit


async def test_admit_counts_requests_and_refuses_past_the_limit(
    ledger: Ledger, clock: ManualClock
) -> None:
    rate = RateLimit(requests_per_minute=3)
    for _ in range(3):
        await admit(ledger, rate)
    clock.advance(20.5)

    with pytest.raises(RateLimitExceeded) as caught:
        await admit(ledger, rate)

    assert caught.value.tenant == TENANT
    assert caught.value.limit == "requests_per_minute"
    assert caught.value.retry_after_s == pytest.approx(39.5)  # until the minute ends


async def test_refused_requests_are_not_counted(ledger: Ledger, clock: ManualClock) -> None:
    await admit(ledger, RateLimit(requests_per_minute=1))
    with pytest.raises(RateLimitExceeded):
        await admit(ledger, RateLimit(requests_per_minute=1))

    # Two admitted in all, the refused one not among them: a limit of 3 still has room.
    await admit(ledger, RateLimit(requests_per_minute=2))
    await admit(ledger, RateLimit(requests_per_minute=3))
    with pytest.raises(RateLimitExceeded):
        await admit(ledger, RateLimit(requests_per_minute=3))


async def test_tokens_settled_this_minute_refuse_the_next_request(ledger: Ledger) -> None:
    rate = RateLimit(requests_per_minute=100, tokens_per_minute=500)
    await admit(ledger, rate)
    await ledger.settle(TENANT, "h1", 10, tokens=500)

    with pytest.raises(RateLimitExceeded) as caught:
        await admit(ledger, rate)

    assert caught.value.limit == "tokens_per_minute"
    assert 0 < caught.value.retry_after_s <= 60


async def test_counters_start_afresh_the_next_minute(ledger: Ledger, clock: ManualClock) -> None:
    rate = RateLimit(requests_per_minute=1, tokens_per_minute=100)
    await admit(ledger, rate)
    await ledger.settle(TENANT, "h1", 10, tokens=100)

    clock.advance(60)

    await admit(ledger, rate)
    with pytest.raises(RateLimitExceeded):
        await admit(ledger, rate)


async def test_no_rate_limit_admits_everything(ledger: Ledger) -> None:
    await ledger.settle(TENANT, "h1", 10, tokens=10**9)
    for _ in range(50):
        await admit(ledger, RateLimit())


async def test_tenants_have_their_own_counters(ledger: Ledger) -> None:
    rate = RateLimit(requests_per_minute=1)
    await admit(ledger, rate)

    await admit(ledger, rate, "other")
