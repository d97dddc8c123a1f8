"""The server with a ledger that goes away: calls that need it are refused with UNAVAILABLE
(a message naming nothing internal), the health check says NOT_SERVING until the ledger
answers again and then SERVING by itself, a settle the outage interrupted lands later, and a
stream's checkpoints keep its hold alive however long it runs.

The fault is real: another connection holds the SQLite file's write lock, so the ledger's
writes fail once its (short) busy timeout passes, exactly as with a wedged sibling process.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from fareway.budgets.ledger import Limit, TenantSeed
from fareway.budgets.memory import MemoryLedger
from fareway.budgets.sqlite import SqliteLedger
from fareway.budgets.windows import Window
from fareway.core.clock import ManualClock, SystemClock
from fareway.core.errors import LedgerUnavailable
from fareway.server.app import SERVICE_NAMES
from fareway.server.ledger_health import LedgerHealth
from fareway.v1 import budget_pb2, router_pb2
from tests.budgets.contract.support import TENANT, figures
from tests.fakes.anthropic_server import Answer, FakeAnthropic
from tests.server.harness import TENANT_KEY, make_config, metadata, user_request

BUSY_TIMEOUT_S = 0.05
WITHIN_S = 20.0  # bound of every wait; they end far sooner
SEEDS = {TENANT: TenantSeed((Limit(Window.DAY, 1_000),))}
NAMES = ("", *SERVICE_NAMES)


class Lock:
    """Another connection holding the file's write lock while `held`."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None)

    def take(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def close(self) -> None:
        self.release()
        self._db.close()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


@pytest.fixture
def lock(path: Path) -> Iterator[Lock]:
    sqlite3.connect(path).close()  # the file exists before either side opens it
    held = Lock(path)
    yield held
    held.close()


@pytest.fixture
async def guarded(path: Path) -> AsyncIterator[LedgerHealth]:
    clock = ManualClock()
    ledger = LedgerHealth(SqliteLedger(path, clock, busy_timeout_s=BUSY_TIMEOUT_S), clock)
    await ledger.seed(SEEDS)
    yield ledger
    await ledger.aclose()


async def until(check: Any, what: str) -> None:
    """Wait (bounded) until `check()` is true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WITHIN_S
    while not await check():
        if loop.time() > deadline:
            pytest.fail(f"{what} not within {WITHIN_S} s")
        await asyncio.sleep(0.01)


async def statuses(servicer: health.aio.HealthServicer) -> set[int]:
    replies = [
        await servicer.Check(health_pb2.HealthCheckRequest(service=name), None) for name in NAMES
    ]
    return {reply.status for reply in replies}


async def test_health_goes_not_serving_once_and_comes_back_by_itself(
    guarded: LedgerHealth, lock: Lock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    servicer = health.aio.HealthServicer()
    for name in NAMES:
        await servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    await guarded.report_to(servicer, NAMES)
    lock.take()

    for hold_id in ("h1", "h2", "h3"):
        with pytest.raises(LedgerUnavailable):
            await guarded.hold(TENANT, hold_id, 10)

    assert await statuses(servicer) == {health_pb2.HealthCheckResponse.NOT_SERVING}
    assert not guarded.available
    [line] = [r for r in caplog.records if "ledger unavailable" in r.getMessage()]
    assert "database is locked" in line.getMessage()
    assert line.exc_info is None  # one line, no traceback

    lock.release()

    async def serving() -> bool:
        return await statuses(servicer) == {health_pb2.HealthCheckResponse.SERVING}

    await until(serving, "SERVING after the lock was released")
    assert guarded.available
    await guarded.hold(TENANT, "h4", 10)


async def test_a_settle_the_outage_interrupted_lands_later(
    guarded: LedgerHealth, lock: Lock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    await guarded.hold(TENANT, "h1", 500)
    await guarded.hold(TENANT, "h2", 100)
    lock.take()

    await guarded.settle(TENANT, "h1", 300, 30)  # returns: the charge is now the wrapper's job
    await guarded.settle(TENANT, "h2", 50, 5)
    assert guarded.pending_settles == 2
    lock.release()

    async def landed() -> bool:
        return guarded.pending_settles == 0

    await until(landed, "the background settles")
    assert await figures(guarded) == {"day": (350, 0, 650)}
    messages = [r.getMessage() for r in caplog.records]
    assert sum("settling budget holds in the background" in m for m in messages) == 1
    assert sum("background settles done: 2 charges landed" in m for m in messages) == 1


async def test_a_retried_settle_counts_its_latency_once(guarded: LedgerHealth, lock: Lock) -> None:
    # The latency count rides on the settle: an outage at the end of an answer neither fails
    # the answer (the settle returns) nor loses the count (it lands with the charge).
    await guarded.hold(TENANT, "h1", 500)
    lock.take()

    await guarded.settle(TENANT, "h1", 300, 30, met_target=False)
    lock.release()

    async def landed() -> bool:
        return guarded.pending_settles == 0

    await until(landed, "the background settle")
    await guarded.settle(TENANT, "h2", 0, met_target=True)
    state = await guarded.state(TENANT)
    assert state.latency_attainment == 0.5
    assert await figures(guarded) == {"day": (300, 0, 700)}


async def test_aclose_waits_for_pending_settles(path: Path, lock: Lock) -> None:
    clock = ManualClock()
    guarded = LedgerHealth(SqliteLedger(path, clock, busy_timeout_s=BUSY_TIMEOUT_S), clock)
    await guarded.seed(SEEDS)
    await guarded.hold(TENANT, "h1", 500)
    lock.take()
    await guarded.settle(TENANT, "h1", 300, 30)
    asyncio.get_running_loop().call_later(0.2, lock.release)

    await guarded.aclose()

    reopened = SqliteLedger(path, clock)
    try:
        assert await figures(reopened) == {"day": (300, 0, 700)}
    finally:
        await reopened.aclose()


async def test_aclose_gives_up_on_settles_after_its_bound(
    path: Path, lock: Lock, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock()
    inner = SqliteLedger(path, clock, busy_timeout_s=BUSY_TIMEOUT_S)
    guarded = LedgerHealth(inner, clock, flush_timeout_s=0.2)
    await guarded.seed(SEEDS)
    await guarded.hold(TENANT, "h1", 500)
    await guarded.checkpoint(TENANT, "h1", 120, 12)
    lock.take()
    await guarded.settle(TENANT, "h1", 300, 30)

    await guarded.aclose()  # returns after its bound; the settle is given up

    assert "1 budget settles not landed" in caplog.text
    lock.release()
    reopened = SqliteLedger(path, clock)
    try:  # the hold is still there, with its checkpoint, for its expiry to settle
        assert await figures(reopened) == {"day": (0, 500, 500)}
    finally:
        await reopened.aclose()


async def test_grpc_calls_are_unavailable_and_health_follows_the_ledger(
    serve: Any, path: Path, lock: Lock
) -> None:
    clock = ManualClock()
    harness = await serve(
        clock=clock, ledger=SqliteLedger(path, clock, busy_timeout_s=BUSY_TIMEOUT_S)
    )
    health_stub = health_pb2_grpc.HealthStub(harness.channel)
    key = metadata(TENANT_KEY)
    await harness.router.Complete(user_request("classify this: x"), metadata=key)
    lock.take()

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await harness.router.Complete(user_request("classify this: x"), metadata=key)

    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    message = caught.value.details() or ""
    assert message == "the budget ledger is unavailable; retry shortly"
    stream = harness.router.Generate(user_request("classify this: x"), metadata=key)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stream.read()  # the first event already fails: nothing streams without a hold
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    for name in NAMES:
        reply = await health_stub.Check(health_pb2.HealthCheckRequest(service=name))
        assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING, name
    lock.release()

    async def serving() -> bool:
        reply = await health_stub.Check(health_pb2.HealthCheckRequest())
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    await until(serving, "SERVING after the lock was released")
    await harness.router.Complete(user_request("classify this: x"), metadata=key)


async def test_a_stream_whose_settle_fails_still_ends_ok_and_is_billed(
    serve: Any, path: Path, lock: Lock
) -> None:
    clock = SystemClock()
    async with FakeAnthropic(default=Answer(chunks=("a",) * 10, chunk_delay_s=0.02)) as fake:
        harness = await serve(
            make_config(provider="upstream", base_url=fake.base_url),
            clock=clock,
            ledger=SqliteLedger(path, clock, busy_timeout_s=BUSY_TIMEOUT_S),
        )
        call = harness.router.Generate(
            user_request("classify this: x"), metadata=metadata(TENANT_KEY)
        )
        events = [await call.read(), await call.read()]
        assert events[-1].WhichOneof("event") == "delta"
        lock.take()  # the ledger goes away mid-stream, after the hold was taken
        while (event := await call.read()) is not grpc.aio.EOF:
            events.append(event)
        assert await call.code() == grpc.StatusCode.OK

    done = events[-1].done
    assert done.total.cost_micros > 0
    assert harness.ledger.pending_settles == 1
    lock.release()

    async def landed() -> bool:
        return bool(harness.ledger.pending_settles == 0)

    await until(landed, "the background settle")
    state = await harness.ledger.state("acme")
    assert (state.limits[0].spent_micros, state.limits[0].reserved_micros) == (
        done.total.cost_micros,
        0,
    )


async def test_checkpoints_keep_a_long_streams_hold_alive(serve: Any) -> None:
    # The hold lives 0.3 s unless refreshed; the answer takes about 1.2 s.
    clock = SystemClock()
    config = make_config()
    async with FakeAnthropic(default=Answer(chunks=("a",) * 40, chunk_delay_s=0.03)) as fake:
        config = make_config(provider="upstream", base_url=fake.base_url)
        config = config.model_copy(
            update={"ledger": config.ledger.model_copy(update={"checkpoint_interval_s": 0.05})}
        )
        harness = await serve(config, clock=clock, ledger=MemoryLedger(clock, hold_ttl_s=0.3))
        call = harness.router.Generate(
            user_request("classify this: x"), metadata=metadata(TENANT_KEY)
        )
        deltas = 0
        while deltas < 35:  # past three times the hold's time-to-live
            event = await call.read()
            deltas += event.WhichOneof("event") == "delta"
        budget = await harness.budgets.GetBudget(
            budget_pb2.GetBudgetRequest(), metadata=metadata(TENANT_KEY)
        )
        assert budget.limits[0].reserved_micros > 0, "the live stream's hold did not expire"
        events: list[router_pb2.GenerateEvent] = []
        while (event := await call.read()) is not grpc.aio.EOF:
            events.append(event)

    state = await harness.ledger.state("acme")
    # Settled once, to the answer's cost: the checkpoints are not charged on top.
    assert (state.limits[0].spent_micros, state.limits[0].reserved_micros) == (
        events[-1].done.total.cost_micros,
        0,
    )
