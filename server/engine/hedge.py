"""The hedge policy (F9): when the first attempt's first token has not come within the plan's
`after_ms` (the request's time-to-first-token target), the same request also starts on the
plan's hedge model, provided the budget covers both estimates at once; the first attempt to
produce a token answers, and the other is cancelled at once (its task, and with it the
provider's stream and upstream connection) and billed for what it used.

`Race` is the referee: each racing attempt asks it, once, at its first token, whether it may
answer (`claim`). The first to ask wins; when a hedge is running, the winner sends the `hedge`
event before its first text, so the caller learns who answers before the answer starts. A
loser's claim is refused and it stops.

The engine starts and cancels the attempts; this module only decides who answers and when to
start the hedge. Its timings are on the event loop's clock, like the first-token timeout.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from fareway.server.engine.attempt import AttemptResult, Claim
from fareway.server.engine.events import Hedged

SendHedged = Callable[[Hedged], Awaitable[None]]


class Race:
    """First token wins, between the first attempt and (once started) its hedge."""

    def __init__(self, send: SendHedged) -> None:
        self._send = send
        self._won = asyncio.Event()
        self.winner = ""
        """The model that answers ("" until one has claimed)."""
        self.hedged: Hedged | None = None
        """The hedge, once started (`winner` filled in when decided)."""
        self._started_at = asyncio.get_running_loop().time()

    def claim_for(self, model_id: str) -> Claim:
        """The claim of the attempt on `model_id`."""

        async def claim() -> bool:
            if self.winner:
                return False
            self.winner = model_id
            self._won.set()
            if self.hedged is not None:
                self.hedged = Hedged(
                    self.hedged.from_model, self.hedged.to_model, self.hedged.after_ms, model_id
                )
                await self._send(self.hedged)
            return True

        return claim

    def start_hedge(self, from_model: str, to_model: str) -> None:
        """The hedge on `to_model` starts now."""
        after_ms = round((asyncio.get_running_loop().time() - self._started_at) * 1000)
        self.hedged = Hedged(from_model, to_model, after_ms, "")

    async def wait(self, tasks: set[asyncio.Task[AttemptResult]], timeout_s: float | None) -> bool:
        """Wait until an attempt has claimed, every one of `tasks` has ended, or `timeout_s`
        passed; True unless it was the time."""
        won = asyncio.ensure_future(self._won.wait())
        try:
            pending = set(tasks)
            while pending and not self._won.is_set():
                done, _ = await asyncio.wait(
                    {*pending, won}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
                )
                if not done:
                    return False
                pending -= done
            return True
        finally:
            won.cancel()
