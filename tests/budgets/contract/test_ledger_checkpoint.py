"""Checkpoints: a streaming call records what it has used so far in its hold, which pushes the
hold's expiry forward; a hold that expires (its process died, or stopped checkpointing) is
settled at its last checkpoint instead of being released; a settle after a checkpoint charges
the settle's amount once."""

from __future__ import annotations

import pytest

from fareway.budgets.ledger import Ledger, Limit, RateLimit
from fareway.budgets.windows import Window
from fareway.core.clock import ManualClock
from fareway.core.errors import RateLimitExceeded
from tests.budgets.contract.support import TENANT, TTL_S, admit, figures


async def test_a_checkpoint_pushes_the_expiry_a_full_ttl_ahead(
    ledger: Ledger, clock: ManualClock
) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])
    await ledger.hold(TENANT, "streaming", 1_000)

    for _ in range(3):  # a stream that outlives its hold's time-to-live several times over
        clock.advance(TTL_S - 1)
        await ledger.checkpoint(TENANT, "streaming", 100, 10)

    clock.advance(TTL_S - 1)
    assert await figures(ledger) == {"day": (0, 1_000, 0)}


async def test_an_expired_hold_is_settled_at_its_last_checkpoint(
    ledger: Ledger, clock: ManualClock
) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000), Limit(Window.TOTAL, 10_000)])
    await ledger.hold(TENANT, "crashed", 500)
    await ledger.checkpoint(TENANT, "crashed", 80, 8)
    await ledger.checkpoint(TENANT, "crashed", 120, 12)  # cumulative: replaces the first

    clock.advance(TTL_S)

    assert await figures(ledger) == {"day": (120, 0, 880), "total": (120, 0, 9_880)}
    await ledger.hold(TENANT, "next", 880)  # charged once, and the hold is gone
    assert await figures(ledger) == {"day": (120, 880, 0), "total": (120, 880, 9_000)}


async def test_an_expired_holds_tokens_count_towards_the_minute(
    ledger: Ledger, clock: ManualClock
) -> None:
    await ledger.hold(TENANT, "crashed", 500)
    clock.advance(TTL_S - 5)
    await ledger.checkpoint(TENANT, "crashed", 120, 900)
    clock.advance(TTL_S)  # expired, in a later minute than the checkpoint

    await ledger.state(TENANT)  # the expiry is noticed, charged to the minute it happens in
    with pytest.raises(RateLimitExceeded):
        await admit(ledger, RateLimit(tokens_per_minute=900))


async def test_an_expired_hold_without_a_checkpoint_charges_nothing(
    ledger: Ledger, clock: ManualClock
) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])
    await ledger.hold(TENANT, "crashed", 500)

    clock.advance(TTL_S)

    assert await figures(ledger) == {"day": (0, 0, 1_000)}


async def test_a_settle_after_checkpoints_charges_its_own_amount_once(
    ledger: Ledger, clock: ManualClock
) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])
    await ledger.hold(TENANT, "h1", 500)
    await ledger.checkpoint(TENANT, "h1", 300, 30)

    await ledger.settle(TENANT, "h1", 400, tokens=40)
    await ledger.settle(TENANT, "h1", 400, tokens=40)
    clock.advance(TTL_S + 1)

    assert await figures(ledger) == {"day": (400, 0, 600)}


async def test_a_late_settle_of_an_expired_hold_charges_only_the_rest(
    ledger: Ledger, clock: ManualClock
) -> None:
    # A call that stalled past its hold's time-to-live: the expiry charged its checkpoint, and
    # its settle, when it comes, tops that up to the actual cost instead of charging it again.
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])
    await ledger.hold(TENANT, "stalled", 500)
    await ledger.checkpoint(TENANT, "stalled", 100, 10)
    clock.advance(TTL_S)
    assert await figures(ledger) == {"day": (100, 0, 900)}

    await ledger.settle(TENANT, "stalled", 250, tokens=25)
    await ledger.settle(TENANT, "stalled", 250, tokens=25)

    assert await figures(ledger) == {"day": (250, 0, 750)}


async def test_a_re_hold_keeps_the_recorded_usage(ledger: Ledger, clock: ManualClock) -> None:
    # A fallback re-targets the hold; what the first attempt used is still owed.
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])
    await ledger.hold(TENANT, "h1", 300)
    await ledger.checkpoint(TENANT, "h1", 200, 20)

    await ledger.hold(TENANT, "h1", 600)
    clock.advance(TTL_S)

    assert await figures(ledger) == {"day": (200, 0, 800)}


async def test_a_checkpoint_of_a_settled_or_unknown_hold_does_nothing(
    ledger: Ledger, clock: ManualClock
) -> None:
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])
    await ledger.hold(TENANT, "h1", 500)
    await ledger.settle(TENANT, "h1", 100)

    await ledger.checkpoint(TENANT, "h1", 300, 30)  # late: the settle wins
    await ledger.checkpoint(TENANT, "ghost", 300, 30)
    assert await figures(ledger) == {"day": (100, 0, 900)}

    clock.advance(TTL_S)
    assert await figures(ledger) == {"day": (100, 0, 900)}
