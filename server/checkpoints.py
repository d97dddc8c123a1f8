"""Checkpoints: while a call streams, what it has used so far goes into its ledger hold.

Why: a server killed mid-stream never settles its holds. With checkpoints, the ledger settles
such a hold at its last checkpoint (SQLite when the dead process's file is next opened, Redis
and memory when the hold's time-to-live runs out), so the text already streamed is billed;
and each checkpoint pushes the hold's expiry a full time-to-live ahead, so a hold never
expires under a live stream.

Off the per-token path: `tick` is called for every piece of text but only compares a clock
reading and a counter; a ledger call happens at most every `interval_s` on the injected
clock's monotonic time (or every CHECKPOINT_EVERY_PIECES pieces of a fast stream), in a task
of its own, one at a time. `stop` cancels the one in flight, and the request settles only
after it: the settle always comes last, and a checkpoint arriving late finds the hold settled
and does nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from fareway.budgets.ledger import Ledger
from fareway.core.clock import Clock
from fareway.core.errors import LedgerUnavailable

# A stream this fast records its usage more often than once an interval: a crash then loses at
# most this many pieces (about as many tokens) of charges.
CHECKPOINT_EVERY_PIECES = 256

Usage = Callable[[], tuple[int, int]]  # (micro-USD, tokens) used so far by the call


class Checkpoints:
    """The checkpoints of one call's hold. Made per request; `stop` before settling."""

    def __init__(
        self, ledger: Ledger, clock: Clock, tenant: str, hold_id: str, interval_s: float
    ) -> None:
        self._ledger = ledger
        self._clock = clock
        self._tenant = tenant
        self._hold_id = hold_id
        self._interval_s = interval_s
        self._next_at = clock.monotonic() + interval_s
        self._pieces = 0
        self._task: asyncio.Task[None] | None = None

    def tick(self, used: Usage) -> None:
        """A piece of text was streamed; record `used()` in the hold when one is due and none
        is in flight. Raises what a finished checkpoint raised other than LedgerUnavailable."""
        self._pieces += 1
        if self._task is not None:
            if not self._task.done():
                return
            self._task.result()  # a bug in a checkpoint surfaces here, not in a log later
            self._task = None
        now = self._clock.monotonic()
        if now < self._next_at and self._pieces < CHECKPOINT_EVERY_PIECES:
            return
        self._next_at = now + self._interval_s
        self._pieces = 0
        micros, tokens = used()
        self._task = asyncio.create_task(self._record(micros, tokens))

    async def stop(self) -> None:
        """Cancel the checkpoint in flight, if any, and wait until it has ended."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async def _record(self, micros: int, tokens: int) -> None:
        try:
            await self._ledger.checkpoint(self._tenant, self._hold_id, micros, tokens)
        except LedgerUnavailable:
            # The ledger's health reports it; the hold keeps its previous checkpoint, and the
            # next tick tries again.
            return
