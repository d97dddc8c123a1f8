"""A separate process on a SQLite ledger file, driven by test_sqlite_ledger.

    python sqlite_child.py settle PATH START   settle 100 micro-USD after another, printing
                                               each settle's number once it has returned;
                                               never exits (the test kills it with SIGKILL)
    python sqlite_child.py hold PATH START N   print "ready", wait for a line on stdin, race
                                               N holds of 30, print how many were granted
    python sqlite_child.py crash PATH START    settle 100 micro-USD, hold 30 as "in-flight",
                                               print "held", then wait for a line on stdin
                                               (the test kills it, or lets it exit)
    python sqlite_child.py checkpoint PATH START   as crash, and record a checkpoint of 20
                                               micro-USD and 7 tokens in the held stream

START is the ISO time of the ManualClock, so both sides agree on the window.
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import datetime

from fareway.budgets.ledger import BudgetState
from fareway.budgets.sqlite import SqliteLedger
from fareway.core.clock import ManualClock
from fareway.core.errors import BudgetExceeded

TENANT = "acme"
CHARGE_MICROS = 100
HOLD_MICROS = 30
CHECKPOINT_MICROS = 20
CHECKPOINT_TOKENS = 7


async def settle_forever(ledger: SqliteLedger) -> None:
    number = 0
    while True:
        number += 1
        await ledger.hold(TENANT, f"h{number}", CHARGE_MICROS)
        await ledger.settle(TENANT, f"h{number}", CHARGE_MICROS)
        print(number, flush=True)


async def race_holds(ledger: SqliteLedger, count: int) -> None:
    await ledger.state(TENANT)  # open the file before the start line, so all start at once
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    name = f"pid{os.getpid()}"
    results = await asyncio.gather(
        *(ledger.hold(TENANT, f"{name}-{i}", HOLD_MICROS) for i in range(count)),
        return_exceptions=True,
    )
    if not all(isinstance(r, BudgetState | BudgetExceeded) for r in results):
        raise RuntimeError(f"unexpected results: {results}")
    print(sum(isinstance(r, BudgetState) for r in results), flush=True)
    await ledger.aclose()


async def hold_and_wait(ledger: SqliteLedger, checkpoint: bool) -> None:
    await ledger.hold(TENANT, "done", CHARGE_MICROS)
    await ledger.settle(TENANT, "done", CHARGE_MICROS)
    await ledger.hold(TENANT, "in-flight", HOLD_MICROS)
    if checkpoint:
        await ledger.checkpoint(TENANT, "in-flight", CHECKPOINT_MICROS, CHECKPOINT_TOKENS)
    print("held", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    await ledger.aclose()


def main(argv: list[str]) -> None:
    mode, path, start = argv[:3]
    ledger = SqliteLedger(path, ManualClock(datetime.fromisoformat(start)))
    if mode == "settle":
        asyncio.run(settle_forever(ledger))
    elif mode in ("crash", "checkpoint"):
        asyncio.run(hold_and_wait(ledger, checkpoint=mode == "checkpoint"))
    else:
        asyncio.run(race_holds(ledger, int(argv[3])))


if __name__ == "__main__":
    main(sys.argv[1:])
