"""A separate process on a PostgreSQL ledger, as another replica: driven by
test_postgres_recovery.

    python postgres_child.py crash URL SCHEMA START       settle 100 micro-USD, hold 30 as
                                                          "in-flight", print "held", then wait
                                                          for a line on stdin (the test kills
                                                          it with SIGKILL, or lets it exit)
    python postgres_child.py checkpoint URL SCHEMA START  as crash, and record a checkpoint of
                                                          20 micro-USD and 7 tokens in the held
                                                          stream
    python postgres_child.py hold URL SCHEMA START N      connect, print "ready", wait for a
                                                          line on stdin, race N holds of 30 and
                                                          settle each granted one at 30 with 3
                                                          tokens, print how many were granted

START is the ISO time of the ManualClock, so every process agrees on the windows; the hold
time-to-live is TTL_S (tests/budgets/contract/support.py).
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import datetime

from fareway.budgets.ledger import BudgetState
from fareway.budgets.postgres import PostgresLedger
from fareway.core.clock import ManualClock
from fareway.core.errors import BudgetExceeded

TENANT = "acme"
TTL_S = 60.0
CHARGE_MICROS = 100
HOLD_MICROS = 30
CHECKPOINT_MICROS = 20
CHECKPOINT_TOKENS = 7
RACE_TOKENS = 3


async def hold_and_wait(ledger: PostgresLedger, checkpoint: bool) -> None:
    await ledger.hold(TENANT, "done", CHARGE_MICROS)
    await ledger.settle(TENANT, "done", CHARGE_MICROS)
    await ledger.hold(TENANT, "in-flight", HOLD_MICROS)
    if checkpoint:
        await ledger.checkpoint(TENANT, "in-flight", CHECKPOINT_MICROS, CHECKPOINT_TOKENS)
    print("held", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    await ledger.aclose()


async def race_holds(ledger: PostgresLedger, count: int) -> None:
    await ledger.ping()  # connect before the start line, so that all start at once
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    name = f"pid{os.getpid()}"

    async def request(i: int) -> bool:
        try:
            await ledger.hold(TENANT, f"{name}-{i}", HOLD_MICROS)
        except BudgetExceeded:
            return False
        await ledger.settle(TENANT, f"{name}-{i}", HOLD_MICROS, tokens=RACE_TOKENS)
        return True

    results = await asyncio.gather(*(request(i) for i in range(count)), return_exceptions=True)
    if not all(isinstance(r, bool | BudgetState) for r in results):
        raise RuntimeError(f"unexpected results: {results}")
    print(sum(r is True for r in results), flush=True)
    await ledger.aclose()


def main(argv: list[str]) -> None:
    mode, url, schema, start = argv[:4]
    clock = ManualClock(datetime.fromisoformat(start))
    ledger = PostgresLedger(url, clock, hold_ttl_s=TTL_S, schema=schema)
    if mode in ("crash", "checkpoint"):
        asyncio.run(hold_and_wait(ledger, checkpoint=mode == "checkpoint"))
    else:
        asyncio.run(race_holds(ledger, int(argv[4])))


if __name__ == "__main__":
    main(sys.argv[1:])
