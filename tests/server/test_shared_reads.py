"""SharedReads: concurrent callers of one tenant share ledger reads, and none is answered from a
read that began before it asked. The ledger is a function that counts its reads and lets the
test decide when each one ends."""

from __future__ import annotations

import asyncio

import pytest

from fareway.budgets.ledger import BudgetState
from fareway.core.errors import LedgerUnavailable
from fareway.server.router_service import SharedReads


class Reads:
    """A ledger read that ends when the test says so; each answers with its own number."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.ends: list[asyncio.Future[None]] = []
        self.fail = False

    async def __call__(self, tenant: str) -> BudgetState:
        number = len(self.started)
        self.started.append(tenant)
        end = asyncio.get_running_loop().create_future()
        self.ends.append(end)
        await end
        if self.fail:
            raise LedgerUnavailable("the ledger is down")
        return BudgetState(tenant, limits=(), latency_target_ms=number, latency_attainment=1.0)

    def finish(self, number: int) -> None:
        self.ends[number].set_result(None)


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_callers_during_a_read_share_the_next_one_not_the_running_one() -> None:
    reads = Reads()
    shared = SharedReads(reads)
    first = asyncio.create_task(shared.read("t"))
    await settle()
    later = [asyncio.create_task(shared.read("t")) for _ in range(5)]
    await settle()
    assert len(reads.started) == 1  # the later callers wait; they do not join read 0
    reads.finish(0)
    await settle()
    assert (await first).latency_target_ms == 0
    assert len(reads.started) == 2  # one read for all five, begun after they asked
    reads.finish(1)
    answers = await asyncio.gather(*later)
    assert [a.latency_target_ms for a in answers] == [1] * 5
    # Idle again: the next caller reads at once.
    again = asyncio.create_task(shared.read("t"))
    await settle()
    reads.finish(2)
    assert (await again).latency_target_ms == 2


async def test_tenants_do_not_share_reads() -> None:
    reads = Reads()
    shared = SharedReads(reads)
    a, b = asyncio.create_task(shared.read("a")), asyncio.create_task(shared.read("b"))
    await settle()
    assert reads.started == ["a", "b"]
    reads.finish(0)
    reads.finish(1)
    assert [(await a).tenant, (await b).tenant] == ["a", "b"]


async def test_a_failed_shared_read_fails_every_caller_and_the_next_read_is_fresh() -> None:
    reads = Reads()
    shared = SharedReads(reads)
    first = asyncio.create_task(shared.read("t"))
    await settle()
    later = [asyncio.create_task(shared.read("t")) for _ in range(3)]
    await settle()
    reads.fail = True
    reads.finish(0)
    with pytest.raises(LedgerUnavailable):
        await first
    await settle()
    reads.finish(1)
    for each in later:
        with pytest.raises(LedgerUnavailable):
            await each
    reads.fail = False
    after = asyncio.create_task(shared.read("t"))
    await settle()
    reads.finish(2)
    assert (await after).latency_target_ms == 2


async def test_a_caller_that_goes_away_does_not_cancel_the_others_read() -> None:
    reads = Reads()
    shared = SharedReads(reads)
    first = asyncio.create_task(shared.read("t"))
    await settle()
    leaving, staying = (asyncio.create_task(shared.read("t")) for _ in range(2))
    await settle()
    reads.finish(0)
    await first
    await settle()
    leaving.cancel()
    await settle()
    reads.finish(1)
    assert (await staying).latency_target_ms == 1
    assert leaving.cancelled()
