"""What only the SQLite ledger promises: figures survive closing, reopening and `kill -9`, and
separate processes on one file share its caps atomically. (The behaviour every backend shares
is in contract/.)"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from fareway.budgets.ledger import Limit, RateLimit
from fareway.budgets.sqlite import SqliteLedger
from fareway.budgets.windows import Window
from fareway.core.clock import ManualClock
from fareway.core.errors import LedgerUnavailable, RateLimitExceeded
from tests.budgets.contract.support import START, TENANT, admit, figures

CHILD = Path(__file__).with_name("sqlite_child.py")
CHILD_TIMEOUT_S = 30


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


async def test_everything_survives_close_and_reopen(path: Path, clock: ManualClock) -> None:
    ledger = SqliteLedger(path, clock)
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)], latency_target_ms=900)
    await ledger.hold(TENANT, "in-flight", 300, admit=RateLimit(requests_per_minute=1))
    await ledger.settle(TENANT, "done", 200, tokens=50, met_target=False)
    await ledger.aclose()

    reopened = SqliteLedger(path, clock)
    try:
        state = await reopened.state(TENANT)
        assert await figures(reopened) == {"day": (200, 300, 500)}
        assert (state.latency_target_ms, state.latency_attainment) == (900, 0.0)
        with pytest.raises(RateLimitExceeded):
            await admit(reopened, RateLimit(requests_per_minute=1))
        await reopened.settle(TENANT, "done", 200)  # still remembered as settled
        assert await figures(reopened) == {"day": (200, 300, 500)}
    finally:
        await reopened.aclose()


async def test_a_settle_that_returned_survives_kill_9(path: Path, clock: ManualClock) -> None:
    ledger = SqliteLedger(path, clock)
    await ledger.configure(TENANT, [Limit(Window.TOTAL, 10**12)])
    await ledger.aclose()
    child = await spawn("settle", path)
    assert child.stdout is not None

    acknowledged = 0
    while acknowledged < 20:
        line = await asyncio.wait_for(child.stdout.readline(), CHILD_TIMEOUT_S)
        assert line, "the child exited before it was killed"
        acknowledged = int(line)
    child.send_signal(signal.SIGKILL)  # no chance to close, checkpoint or flush anything
    await child.wait()

    assert child.returncode == -signal.SIGKILL
    # The charges live in the WAL, which nothing checkpointed or fsynced before the kill.
    assert await asyncio.to_thread(os.path.getsize, f"{path}-wal") > 0
    reopened = SqliteLedger(path, clock)
    try:
        [(spent, reserved, _)] = (await figures(reopened)).values()
    finally:
        await reopened.aclose()
    assert spent >= acknowledged * 100  # every settle that returned, maybe one more
    assert spent % 100 == 0
    assert reserved == 0  # a hold in flight at the kill was released: its owner is gone


async def test_processes_sharing_the_file_share_the_cap(path: Path, clock: ManualClock) -> None:
    # Open throughout: a ledger releases the holds of exited processes only when it opens the
    # file (or is asked to recover), and the children exit holding.
    ledger = SqliteLedger(path, clock)
    try:
        await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])
        children = [await spawn("hold", path, "100") for _ in range(2)]

        for child in children:  # both have the file open before either starts
            assert await read_line(child) == "ready"
        for child in children:
            assert child.stdin is not None
            child.stdin.write(b"go\n")
            await child.stdin.drain()
        granted = [int(await read_line(child)) for child in children]
        for child in children:
            assert await child.wait() == 0

        assert sum(granted) == 33  # 33 x 30 = 990 across both processes
        assert await figures(ledger) == {"day": (0, 990, 10)}
    finally:
        await ledger.aclose()


async def test_a_file_from_a_newer_fareway_is_refused(path: Path, clock: ManualClock) -> None:
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    db.close()
    ledger = SqliteLedger(path, clock)

    with pytest.raises(LedgerUnavailable) as caught:
        await ledger.state(TENANT)
    await ledger.aclose()

    assert "schema version 99" in caught.value.detail
    assert str(path) in caught.value.detail


async def test_aclose_twice_is_harmless(path: Path, clock: ManualClock) -> None:
    ledger = SqliteLedger(path, clock)
    await ledger.state(TENANT)

    await ledger.aclose()
    await ledger.aclose()


async def spawn(mode: str, path: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        mode,
        str(path),
        START.isoformat(),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )


async def read_line(child: asyncio.subprocess.Process) -> str:
    assert child.stdout is not None
    line = await asyncio.wait_for(child.stdout.readline(), CHILD_TIMEOUT_S)
    return line.decode().strip()
