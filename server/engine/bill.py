"""One bill per request: the ledger hold its attempts run under, what each attempt used, and
the one settle.

Guarantees:
- One hold (one hold id) for the whole request, re-targeted before each further attempt to
  what was billed so far plus that attempt's estimate (`hold`), so it covers several attempts.
  Each `hold` is one ledger round trip, which also admits the request when asked to (the
  first) and returns the tenant's budget with the hold in place.
- Each attempt's usage is recorded once, from its result (`record`); a second call for the
  same attempt changes nothing.
- While attempts stream, checkpoints (`server/checkpoints.py`) record the usage so far, the
  running attempts' streamed text included (`so_far`), so a process that dies mid-stream has
  that much billed.
- `settle` happens at most once, to exactly what was recorded, in one ledger round trip that
  also counts the latency attainment when given one (`met_target`): shielded from
  cancellation (a second cancellation, server shutdown say, must not leave the hold until its
  time-to-live), and only after the checkpoint in flight has stopped, so the settle is the
  hold's last word.

No telemetry here: the engine reports holds and settles (`observe.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial

from fareway.budgets.ledger import BudgetState, Ledger, RateLimit
from fareway.core.clock import Clock
from fareway.routing.catalog import ModelSpec
from fareway.routing.decision import AttemptUsage, summed
from fareway.server.checkpoints import Checkpoints
from fareway.server.engine.attempt import AttemptResult, Meter


class Bill:
    """What one request has used, attempt by attempt, under one ledger hold."""

    def __init__(
        self,
        ledger: Ledger,
        clock: Clock,
        tenant: str,
        hold_id: str,
        prompt_tokens: int,
        checkpoint_interval_s: float,
    ) -> None:
        self.tenant = tenant
        self.hold_id = hold_id
        self._ledger = ledger
        self._prompt_tokens = prompt_tokens
        self._checkpoints = Checkpoints(ledger, clock, tenant, hold_id, checkpoint_interval_s)
        # Runs for every piece of text: a partial (C) rather than a method that calls on.
        self.tick: Callable[[], None] = partial(self._checkpoints.tick, self.so_far)
        """A piece of text was streamed: checkpoint the usage so far when one is due."""
        self._recorded: list[AttemptUsage] = []
        self._running: list[Meter] = []
        self._settled = False

    @property
    def attempts(self) -> tuple[AttemptUsage, ...]:
        """The usage of every recorded attempt that used anything, in order."""
        return tuple(self._recorded)

    @property
    def cost_micros(self) -> int:
        """Total cost of the recorded attempts."""
        return sum(u.cost_micros for u in self._recorded)

    @property
    def tokens(self) -> int:
        """Input plus output tokens of the recorded attempts, for tokens-per-minute limits."""
        return sum(u.input_tokens + u.output_tokens for u in self._recorded)

    def total(self) -> AttemptUsage:
        """All recorded attempts summed."""
        return summed(self._recorded)

    async def hold(
        self, next_estimate_micros: int, *, admit: RateLimit | None = None
    ) -> tuple[int, BudgetState]:
        """Re-target the hold to what was billed so far plus the next attempt's estimate;
        return that amount and the tenant's budget with the hold in place. Raises
        BudgetExceeded (the hold is then unchanged) when the tenant cannot afford it, and with
        `admit`, RateLimitExceeded (nothing held) past the tenant's rate limit."""
        amount = self.cost_micros + next_estimate_micros
        state = await self._ledger.hold(self.tenant, self.hold_id, amount, admit=admit)
        return amount, state

    def meter(self, model: ModelSpec) -> Meter:
        """A meter for an attempt about to start; its usage counts in `so_far` until the
        attempt's result is recorded."""
        meter = Meter(model, self._prompt_tokens)
        self._running.append(meter)
        return meter

    def so_far(self) -> tuple[int, int]:
        """(micro-USD, tokens) used by the request up to now, running attempts included: what
        a checkpoint records."""
        micros, tokens = self.cost_micros, self.tokens
        for meter in self._running:
            usage = meter.usage()
            micros += usage.cost_micros
            tokens += usage.input_tokens + usage.output_tokens
        return micros, tokens

    def record(self, result: AttemptResult, meter: Meter | None) -> AttemptUsage:
        """Record a finished attempt's usage once (`meter` None: it never started); a second
        call for the same meter records nothing and returns the same figures."""
        usage = result.usage
        if meter is None or meter not in self._running:
            return usage
        self._running.remove(meter)
        if usage.used:
            self._recorded.append(usage)
        return usage

    async def settle(self, met_target: bool | None = None) -> bool:
        """Stop the checkpoints, then settle the hold to what was recorded, counting the
        request towards the latency attainment unless `met_target` is None; False when it was
        settled already. Shielded: see the module docstring."""
        if self._settled:
            return False
        self._settled = True
        settling = asyncio.ensure_future(self._settle(met_target))
        try:
            await asyncio.shield(settling)
        except asyncio.CancelledError:
            await settling
            raise
        return True

    async def _settle(self, met_target: bool | None) -> None:
        await self._checkpoints.stop()
        await self._ledger.settle(
            self.tenant, self.hold_id, self.cost_micros, self.tokens, met_target=met_target
        )
