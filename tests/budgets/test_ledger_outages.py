"""The ledgers under faults: a store that cannot be reached raises LedgerUnavailable (whose
public message names nothing internal, and whose detail names the store) from every method,
and the ledger comes back by itself once the store does; a Redis that lost its data gets the
configured budgets written back before it holds, admits or reports for a seeded tenant."""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import suppress
from pathlib import Path

import pytest
from redis.asyncio import Redis

from fareway.budgets.ledger import Ledger, Limit, RateLimit, TenantSeed
from fareway.budgets.redis import RedisLedger
from fareway.budgets.sqlite import SqliteLedger
from fareway.budgets.windows import Window
from fareway.core.clock import ManualClock
from fareway.core.errors import BudgetExceeded, LedgerUnavailable
from tests.budgets.contract.support import START, TENANT, figures
from tests.budgets.redis_process import RedisProcess, free_port, redis_process

SEEDS = {TENANT: TenantSeed((Limit(Window.DAY, 1_000),), latency_target_ms=700)}

Call = Callable[[Ledger], Awaitable[object]]
EVERY_METHOD: dict[str, Call] = {
    "configure": lambda ledger: ledger.configure(TENANT, [Limit(Window.DAY, 1)]),
    "seed": lambda ledger: ledger.seed(SEEDS),
    "state": lambda ledger: ledger.state(TENANT),
    "hold": lambda ledger: ledger.hold(TENANT, "h1", 10),
    "hold admitting": lambda ledger: ledger.hold(
        TENANT, "h1", 10, admit=RateLimit(requests_per_minute=5)
    ),
    "settle": lambda ledger: ledger.settle(TENANT, "h1", 10, 1),
    "settle counting latency": lambda ledger: ledger.settle(TENANT, "h1", 10, 1, met_target=True),
    "checkpoint": lambda ledger: ledger.checkpoint(TENANT, "h1", 5, 1),
    "ping": lambda ledger: ledger.ping(),
}


@pytest.fixture
async def own_redis() -> AsyncIterator[RedisProcess]:
    async with redis_process() as server:
        yield server


def assert_public_message_is_clean(error: LedgerUnavailable) -> None:
    text = str(error)
    assert "redis" not in text.lower()
    assert "127.0.0.1" not in text
    assert "<class" not in text
    assert "/" not in text


@pytest.mark.parametrize("method", EVERY_METHOD)
async def test_sqlite_in_a_missing_folder_is_unavailable_naming_the_path(
    tmp_path: Path, method: str
) -> None:
    path = tmp_path / "missing" / "ledger.db"
    ledger = SqliteLedger(path, ManualClock(START))
    try:
        with pytest.raises(LedgerUnavailable) as caught:
            await EVERY_METHOD[method](ledger)
    finally:
        await ledger.aclose()

    assert_public_message_is_clean(caught.value)
    assert caught.value.detail == (
        f"cannot open {path}: folder {tmp_path / 'missing'} does not exist"
    )


async def test_sqlite_comes_back_once_its_folder_exists(tmp_path: Path) -> None:
    folder = tmp_path / "later"
    ledger = SqliteLedger(folder / "ledger.db", ManualClock(START))
    try:
        with pytest.raises(LedgerUnavailable):
            await ledger.ping()

        folder.mkdir()

        await ledger.ping()
        await ledger.seed(SEEDS)
        assert await figures(ledger) == {"day": (0, 0, 1_000)}
    finally:
        await ledger.aclose()


async def test_sqlite_file_that_cannot_be_written_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    first = SqliteLedger(path, ManualClock(START))
    await first.seed(SEEDS)
    await first.aclose()
    if os.geteuid() == 0:
        pytest.skip("root may write a read-only file")
    path.chmod(0o444)
    ledger = SqliteLedger(path, ManualClock(START))
    try:
        with pytest.raises(LedgerUnavailable) as caught:
            await ledger.hold(TENANT, "h1", 10)
    finally:
        await ledger.aclose()
        path.chmod(0o644)

    assert str(path) in caught.value.detail


@pytest.mark.parametrize("method", EVERY_METHOD)
async def test_redis_on_a_closed_port_is_unavailable_naming_the_address(method: str) -> None:
    port = free_port()
    ledger = RedisLedger(f"redis://:secret@127.0.0.1:{port}/0", ManualClock(START))
    try:
        with pytest.raises(LedgerUnavailable) as caught:
            await EVERY_METHOD[method](ledger)
    finally:
        await ledger.aclose()

    assert_public_message_is_clean(caught.value)
    assert caught.value.detail.startswith(f"redis at 127.0.0.1:{port}/0: ")
    assert "secret" not in caught.value.detail


@pytest.mark.redis
async def test_redis_restarted_empty_writes_the_seeds_back_before_serving(
    own_redis: RedisProcess, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock(START)
    ledger = RedisLedger(own_redis.url, clock, prefix="faults")
    try:
        await ledger.seed({**SEEDS, "uncapped": TenantSeed(())})
        await ledger.configure("override", [Limit(Window.DAY, 5)])  # never seeded
        await ledger.hold(TENANT, "h1", 900)

        await own_redis.restart()  # empty; the ledger's pooled connections are dead

        # The first call after the restart reconnects, reloads the scripts, and refuses what
        # the configured cap refuses: the tenant is not served uncapped even once.
        with pytest.raises(BudgetExceeded):
            await ledger.hold(TENANT, "h2", 1_001)
        await ledger.hold(TENANT, "h2", 1_000)  # its spend and holds were lost with the data
        assert await figures(ledger) == {"day": (0, 1_000, 0)}
        assert (await ledger.state(TENANT)).latency_target_ms == 700
        assert (await ledger.state("uncapped")).limits == ()
        assert (await ledger.state("override")).limits == ()  # not seeded: nothing to restore
    finally:
        await ledger.aclose()

    assert "had lost tenant 'acme'" in caplog.text


@pytest.mark.redis
async def test_redis_that_stopped_is_unavailable_then_comes_back(own_redis: RedisProcess) -> None:
    ledger = RedisLedger(own_redis.url, ManualClock(START), prefix="faults")
    try:
        await ledger.seed(SEEDS)
        await own_redis.stop()

        with pytest.raises(LedgerUnavailable) as caught:
            await ledger.state(TENANT)
        assert_public_message_is_clean(caught.value)
        with pytest.raises(LedgerUnavailable):
            await ledger.ping()

        await own_redis.start()

        await ledger.ping()
        assert await figures(ledger) == {"day": (0, 0, 1_000)}  # seeds written back
    finally:
        await ledger.aclose()


@pytest.mark.redis
async def test_redis_flushed_mid_run_keeps_caps_on_every_call(
    redis_url: str, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    client = Redis.from_url(redis_url)
    ledger = RedisLedger(client, ManualClock(START), prefix=redis_prefix)
    try:
        await ledger.seed(SEEDS)
        await ledger.settle(TENANT, "h0", 600)
        for lost in (
            lambda: ledger.hold(TENANT, "h1", 1_001),
            lambda: ledger.hold(TENANT, "h2", 0, admit=RateLimit()),
            lambda: ledger.state(TENANT),
        ):
            await delete_keys(client, redis_prefix)  # FLUSHALL, confined to this test's keys
            with suppress(BudgetExceeded):  # the hold past the cap is refused, as it must be
                await lost()
            assert await figures(ledger) == {"day": (0, 0, 1_000)}
    finally:
        await ledger.aclose()
        await client.aclose()

    assert caplog.text.count("had lost tenant 'acme'") == 3


async def delete_keys(client: Redis, prefix: str) -> None:
    keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
    if keys:
        await client.delete(*keys)
