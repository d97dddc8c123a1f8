"""Crash recovery of the SQLite ledger: the holds of a process that no longer runs are settled
at their last checkpoint when the file is next opened (or on `recover()`), so a server
restarted after `kill -9` bills what its streams had used and does not wait out the hold
time-to-live for the rest. Holds of running processes (several servers may share one
file), of other hosts and of version 1 files are kept: releasing a live hold could let a tenant
overspend, so only an owner that is certainly gone loses its holds."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fareway.budgets.accounting import epoch_ms
from fareway.budgets.codec import encode_limits
from fareway.budgets.ledger import Limit, RateLimit
from fareway.budgets.processes import ProcessId, is_gone, process_status, this_process
from fareway.budgets.sqlite import SqliteLedger
from fareway.budgets.sqlite_file import SCHEMA_VERSION
from fareway.budgets.windows import Window
from fareway.core.clock import ManualClock
from fareway.core.errors import RateLimitExceeded
from tests.budgets.contract.support import START, TENANT, admit, figures

CHILD = Path(__file__).with_name("sqlite_child.py")
CHILD_TIMEOUT_S = 30
CAP = 1_000
CHARGE = 100  # what the child settles before it holds (sqlite_child.py)
HOLD = 30  # what the child holds "in flight"
CHECKPOINT = 20  # what the child's stream has used, in "checkpoint" mode (sqlite_child.py)
CHECKPOINT_TOKENS = 7
FAR_FUTURE_MS = epoch_ms(START) + 3_600_000  # a hold that will not expire during the test

needs_proc = pytest.mark.skipif(
    not this_process().start, reason="needs /proc to tell a recycled PID from its first owner"
)


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.db"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def configured(path: Path, clock: ManualClock) -> Path:
    """The file with the tenant's day cap of 1,000 micro-USD, and nothing spent or held."""
    ledger = SqliteLedger(path, clock)
    await ledger.configure(TENANT, [Limit(Window.DAY, CAP)])
    await ledger.aclose()
    return path


async def test_a_killed_processs_hold_is_released_on_open(
    configured: Path, clock: ManualClock
) -> None:
    child = await spawn_holder(configured)
    child.kill()  # SIGKILL: no chance to settle or release anything
    await child.wait()

    reopened = SqliteLedger(configured, clock)
    try:
        # The charge it settled stays; the hold it never settled is gone.
        assert await figures(reopened) == {"day": (CHARGE, 0, CAP - CHARGE)}
    finally:
        await reopened.aclose()


async def test_a_killed_processs_hold_is_settled_at_its_last_checkpoint(
    configured: Path, clock: ManualClock
) -> None:
    child = await spawn_holder(configured, mode="checkpoint")
    child.kill()
    await child.wait()

    reopened = SqliteLedger(configured, clock)
    try:
        # What the stream had used by its last checkpoint is billed; the rest of its hold is
        # returned, and its tokens count towards the minute.
        used = CHARGE + CHECKPOINT
        assert await figures(reopened) == {"day": (used, 0, CAP - used)}
        with pytest.raises(RateLimitExceeded):
            await admit(reopened, RateLimit(tokens_per_minute=CHECKPOINT_TOKENS))
    finally:
        await reopened.aclose()


async def test_a_running_processs_hold_is_kept_until_it_has_gone(
    configured: Path, clock: ManualClock
) -> None:
    child = await spawn_holder(configured)
    ledger = SqliteLedger(configured, clock)
    try:
        assert await figures(ledger) == {"day": (CHARGE, HOLD, CAP - CHARGE - HOLD)}
        assert await ledger.recover() == 0

        await stop(child)  # it exits without settling its hold

        assert await ledger.recover() == 1  # what a long-running sibling calls
        assert await figures(ledger) == {"day": (CHARGE, 0, CAP - CHARGE)}
    finally:
        await ledger.aclose()
        await stop(child)


async def test_holds_of_this_process_are_kept(configured: Path, clock: ManualClock) -> None:
    first = SqliteLedger(configured, clock)
    second = SqliteLedger(configured, clock)
    try:
        await first.hold(TENANT, "mine", HOLD)
        assert await second.recover() == 0
        assert await figures(second) == {"day": (0, HOLD, CAP - HOLD)}
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_hold_names_its_owner(configured: Path) -> None:
    child = await spawn_holder(configured)
    try:
        [owner] = read_owners(configured)
        status = process_status(child.pid)
    finally:
        await stop(child)

    expected_start = status[1] if status else ""
    assert ProcessId.parse(owner) == ProcessId(this_process().host, child.pid, expected_start)


@needs_proc
async def test_a_recycled_pid_does_not_keep_a_dead_owners_hold(
    configured: Path, clock: ManualClock
) -> None:
    child = await spawn_holder(configured)
    me = this_process()
    try:
        # Earlier processes that had the PIDs the child and this test run under now: alive
        # PIDs, but not the processes that took these holds.
        insert_hold(configured, "before-child", ProcessId(me.host, child.pid, "old.1"))
        insert_hold(configured, "before-me", ProcessId(me.host, me.pid, "old.2"))
        reopened = SqliteLedger(configured, clock)
        try:
            assert await figures(reopened) == {"day": (CHARGE, HOLD, CAP - CHARGE - HOLD)}
        finally:
            await reopened.aclose()
    finally:
        await stop(child)


async def test_holds_that_cannot_be_checked_are_left_to_expire(
    configured: Path, clock: ManualClock
) -> None:
    me = this_process()
    insert_hold(configured, "other-host", ProcessId("elsewhere/4026531836", 999_999, "x.1"))
    insert_hold(configured, "other-namespace", ProcessId(f"{me.host}-ns2", 999_999, "x.1"))
    insert_hold(configured, "version-1", "")
    insert_hold(configured, "unreadable", "not an owner")

    reopened = SqliteLedger(configured, clock)
    try:
        assert await reopened.recover() == 0
        assert await figures(reopened) == {"day": (0, 4 * HOLD, CAP - 4 * HOLD)}
        clock.advance(3_601)  # the time-to-live still returns them
        assert await figures(reopened) == {"day": (0, 0, CAP)}
    finally:
        await reopened.aclose()


async def test_a_version_1_file_is_migrated(path: Path, clock: ManualClock) -> None:
    write_version_1_file(path)

    ledger = SqliteLedger(path, clock)
    try:
        # Version 1 holds name no owner: kept until they expire.
        assert await figures(ledger) == {"day": (CHARGE, HOLD, CAP - CHARGE - HOLD)}
        await ledger.hold(TENANT, "new", HOLD)
    finally:
        await ledger.aclose()

    with sqlite3.connect(path) as db:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        owners = dict(db.execute("SELECT hold_id, owner FROM holds").fetchall())
    db.close()
    assert version == SCHEMA_VERSION == 3
    assert owners == {"old": "", "new": str(this_process())}


def test_a_killed_child_not_yet_reaped_counts_as_gone() -> None:
    me = this_process()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        status = process_status(child.pid)
        owner = ProcessId(me.host, child.pid, status[1] if status else "")
        assert not is_gone(owner, me)

        child.kill()
        if status is not None:  # with /proc: a zombie until its parent reaps it
            wait_for_zombie(child.pid)
            assert is_gone(owner, me)
    finally:
        child.kill()
        child.wait()
    assert is_gone(owner, me)  # reaped: the PID is free


# --- helpers --------------------------------------------------------------------------------


async def spawn_holder(path: Path, mode: str = "crash") -> asyncio.subprocess.Process:
    """sqlite_child.py in `crash` (or `checkpoint`) mode, once it has settled CHARGE and holds
    HOLD (with a checkpoint of CHECKPOINT)."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        mode,
        str(path),
        START.isoformat(),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    try:
        line = await asyncio.wait_for(child.stdout.readline(), CHILD_TIMEOUT_S)
        assert line == b"held\n"
    except BaseException:
        await stop(child)
        raise
    return child


async def stop(child: asyncio.subprocess.Process) -> None:
    """Let the child exit (it waits for a line), or kill it if it does not; idempotent."""
    if child.returncode is not None:
        return
    assert child.stdin is not None
    try:
        child.stdin.write(b"exit\n")
        await child.stdin.drain()
        await asyncio.wait_for(child.wait(), CHILD_TIMEOUT_S)
    except (OSError, TimeoutError):
        child.kill()
        await child.wait()


def insert_hold(path: Path, hold_id: str, owner: ProcessId | str) -> None:
    """A hold of HOLD micro-USD written straight into the file, as if by `owner`."""
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO holds (tenant, hold_id, amount, expires_at, owner) VALUES (?, ?, ?, ?, ?)",
            (TENANT, hold_id, HOLD, FAR_FUTURE_MS, str(owner)),
        )
    db.close()


def read_owners(path: Path) -> list[str]:
    with sqlite3.connect(path) as db:
        owners = [row[0] for row in db.execute("SELECT owner FROM holds")]
    db.close()
    return owners


def write_version_1_file(path: Path) -> None:
    """A ledger file as the first SQLite ledger (schema version 1) left it: a CHARGE spent
    today and a HOLD in flight."""
    with sqlite3.connect(path) as db:
        db.executescript(
            """
            CREATE TABLE tenants (tenant TEXT PRIMARY KEY, limits TEXT,
                latency_target_ms INTEGER NOT NULL DEFAULT 0,
                latency_met INTEGER NOT NULL DEFAULT 0,
                latency_total INTEGER NOT NULL DEFAULT 0);
            CREATE TABLE spend (tenant TEXT NOT NULL, window_key TEXT NOT NULL,
                micros INTEGER NOT NULL, PRIMARY KEY (tenant, window_key));
            CREATE TABLE holds (tenant TEXT NOT NULL, hold_id TEXT NOT NULL,
                amount INTEGER NOT NULL, expires_at INTEGER NOT NULL,
                PRIMARY KEY (tenant, hold_id));
            CREATE INDEX holds_by_expiry ON holds (expires_at);
            CREATE TABLE settled (tenant TEXT NOT NULL, hold_id TEXT NOT NULL,
                settled_at INTEGER NOT NULL, PRIMARY KEY (tenant, hold_id));
            CREATE INDEX settled_by_age ON settled (settled_at);
            CREATE TABLE minutes (tenant TEXT PRIMARY KEY, minute_key TEXT NOT NULL,
                requests INTEGER NOT NULL, tokens INTEGER NOT NULL);
            PRAGMA user_version = 1;
            """
        )
        db.execute(
            "INSERT INTO tenants (tenant, limits) VALUES (?, ?)",
            (TENANT, encode_limits([Limit(Window.DAY, CAP)])),
        )
        db.execute("INSERT INTO spend VALUES (?, ?, ?)", (TENANT, f"day:{START:%Y-%m-%d}", CHARGE))
        db.execute("INSERT INTO holds VALUES (?, 'old', ?, ?)", (TENANT, HOLD, FAR_FUTURE_MS))
    db.close()


def wait_for_zombie(pid: int, within_s: float = 10) -> None:
    deadline = time.monotonic() + within_s
    while (status := process_status(pid)) is None or status[0] != "Z":
        if time.monotonic() > deadline:
            pytest.fail(f"process {pid} did not become a zombie within {within_s} s: {status}")
        time.sleep(0.01)
