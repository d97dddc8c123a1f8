"""Replicas of the PostgreSQL ledger as separate processes sharing one database: three of them
racing for one cap grant exactly what it affords, and one killed with SIGKILL loses no
settled charge while its hold, left behind, is settled at its last checkpoint once its
time-to-live runs out (replicas on other hosts cannot tell whether it still runs, so they do
not settle it earlier: see budgets/postgres.py)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from fareway.budgets.ledger import Limit, RateLimit
from fareway.budgets.postgres import PostgresLedger
from fareway.budgets.windows import Window
from fareway.core.clock import ManualClock
from fareway.core.errors import RateLimitExceeded
from tests.budgets.contract.support import START, TENANT, TTL_S, admit, figures

pytestmark = pytest.mark.postgres

CHILD = Path(__file__).with_name("postgres_child.py")
CHILD_TIMEOUT_S = 60
CAP = 1_000
CHARGE = 100  # what a crash-mode child settles before it holds (postgres_child.py)
HOLD = 30  # what a child holds "in flight", and what each racing hold is
CHECKPOINT = 20  # what the child's stream has used, in "checkpoint" mode
CHECKPOINT_TOKENS = 7
RACE_TOKENS = 3
REPLICAS = 3
RACE_HOLDS = 40  # per replica: 120 holds of 30 for a cap of 1,000


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
async def ledger(
    postgres_url: str, postgres_schema: str, clock: ManualClock
) -> AsyncIterator[PostgresLedger]:
    """This process's ledger on the test's schema, with the tenant's day cap of 1,000."""
    ledger = PostgresLedger(postgres_url, clock, hold_ttl_s=TTL_S, schema=postgres_schema)
    try:
        await ledger.configure(TENANT, [Limit(Window.DAY, CAP)])
        yield ledger
    finally:
        await ledger.aclose()


async def test_three_replicas_racing_for_a_cap_grant_exactly_what_it_affords(
    ledger: PostgresLedger, postgres_url: str, postgres_schema: str
) -> None:
    children = [
        await spawn(postgres_url, postgres_schema, "hold", str(RACE_HOLDS), expect=b"ready\n")
        for _ in range(REPLICAS)
    ]
    try:
        for child in children:  # the start line: all three race at once
            assert child.stdin is not None
            child.stdin.write(b"go\n")
            await child.stdin.drain()
        granted = [int(await read_line(child)) for child in children]
    finally:
        for child in children:
            await stop(child)

    assert sum(granted) == CAP // HOLD  # 33 x 30 = 990 across the three; a 34th would pass
    assert await figures(ledger) == {"day": (990, 0, 10)}  # every granted hold settled once
    with pytest.raises(RateLimitExceeded):  # and each one's tokens counted, exactly
        await admit(ledger, RateLimit(tokens_per_minute=sum(granted) * RACE_TOKENS))
    await admit(ledger, RateLimit(tokens_per_minute=sum(granted) * RACE_TOKENS + 1))


async def test_a_killed_replica_loses_no_settled_charge_and_its_hold_expires(
    ledger: PostgresLedger, postgres_url: str, postgres_schema: str, clock: ManualClock
) -> None:
    child = await spawn(postgres_url, postgres_schema, "crash")
    child.kill()  # SIGKILL: no chance to settle or release anything
    await child.wait()

    # The charge it settled is committed; its hold still counts, until its time-to-live.
    assert await figures(ledger) == {"day": (CHARGE, HOLD, CAP - CHARGE - HOLD)}
    clock.advance(TTL_S)
    assert await figures(ledger) == {"day": (CHARGE, 0, CAP - CHARGE)}


async def test_a_killed_replicas_hold_is_settled_at_its_last_checkpoint(
    ledger: PostgresLedger, postgres_url: str, postgres_schema: str, clock: ManualClock
) -> None:
    child = await spawn(postgres_url, postgres_schema, "checkpoint")
    child.kill()
    await child.wait()

    clock.advance(TTL_S)

    # What its stream had used by its last checkpoint is billed, the rest of its hold is
    # returned, and its tokens count towards the minute.
    used = CHARGE + CHECKPOINT
    assert await figures(ledger) == {"day": (used, 0, CAP - used)}
    with pytest.raises(RateLimitExceeded):
        await admit(ledger, RateLimit(tokens_per_minute=CHECKPOINT_TOKENS))


async def test_a_running_replicas_hold_is_kept(
    ledger: PostgresLedger, postgres_url: str, postgres_schema: str, clock: ManualClock
) -> None:
    child = await spawn(postgres_url, postgres_schema, "checkpoint")
    try:
        clock.advance(TTL_S - 1)
        assert await figures(ledger) == {"day": (CHARGE, HOLD, CAP - CHARGE - HOLD)}
    finally:
        await stop(child)


# --- helpers --------------------------------------------------------------------------------


async def spawn(
    url: str, schema: str, mode: str, *args: str, expect: bytes = b"held\n"
) -> asyncio.subprocess.Process:
    """postgres_child.py in `mode`, once it has printed `expect`."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        mode,
        url,
        schema,
        START.isoformat(),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert await read_line(child) == expect.decode().strip()
    except BaseException:
        await stop(child)
        raise
    return child


async def read_line(child: asyncio.subprocess.Process) -> str:
    assert child.stdout is not None
    line = await asyncio.wait_for(child.stdout.readline(), CHILD_TIMEOUT_S)
    return line.decode().strip()


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
