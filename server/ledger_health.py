"""How the server lives with a ledger that may go away: LedgerHealth wraps the configured
ledger, forwards every call, and keeps two promises.

Health follows the ledger. The first call that raises LedgerUnavailable marks the ledger down:
the gRPC health status of the whole server ("") and of each fareway service turns NOT_SERVING
(load balancers stop sending traffic), one line is logged with the cause, and a watcher polls
the inner ledger's `ping` every `poll_interval_s` until it answers; then the statuses return
to SERVING and one line says so. Calls that need the ledger meanwhile fail with
LedgerUnavailable (gRPC UNAVAILABLE, a message naming nothing internal); nothing is held, so
nothing streams.

A settle is never lost to an outage. A settle that raises LedgerUnavailable (the ledger went
away mid-stream, after the text was sent) returns normally and is retried in the background
with exponential backoff until it lands, with the latency count it carries (`met_target`):
an outage at the end of an answer neither fails the answer nor loses the count. One line is
logged when such a burst starts and one when its last settle has landed. `aclose` waits up to
`flush_timeout_s` for those still pending and names any it had to give up: their holds are
then settled at their last checkpoint by the ledger itself (without the latency count).

Every task started here (the watcher, the settle retries) is cancelled or awaited by `aclose`.
The poll and backoff sleeps use the injected clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from grpc_health.v1 import health, health_pb2

from fareway.budgets.ledger import BudgetState, Ledger, Limit, RateLimit, TenantSeed
from fareway.core.clock import Clock
from fareway.core.errors import LedgerUnavailable

T = TypeVar("T")

log = logging.getLogger(__name__)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@dataclass(frozen=True)
class Settle:
    """One settle's arguments, kept to retry it as it was asked."""

    tenant: str
    hold_id: str
    actual_micros: int
    tokens: int
    met_target: bool | None

    def on(self, ledger: Ledger) -> Awaitable[None]:
        return ledger.settle(
            self.tenant, self.hold_id, self.actual_micros, self.tokens, met_target=self.met_target
        )


class LedgerHealth:
    """A Ledger that reports its store's reachability to gRPC health and retries settles."""

    def __init__(
        self,
        inner: Ledger,
        clock: Clock,
        *,
        poll_interval_s: float = 1.0,
        settle_backoff_s: tuple[float, float] = (0.5, 30.0),
        flush_timeout_s: float = 5.0,
    ) -> None:
        self.inner = inner
        self._clock = clock
        self._poll_interval_s = poll_interval_s
        self._backoff_first_s, self._backoff_max_s = settle_backoff_s
        self._flush_timeout_s = flush_timeout_s
        self._servicer: health.aio.HealthServicer | None = None
        self._services: tuple[str, ...] = ()
        self._down = False
        self._publishing = asyncio.Lock()
        self._watcher: asyncio.Task[None] | None = None
        self._settles: set[asyncio.Task[None]] = set()
        self._settled_late = 0  # settles landed in the background in the current burst

    @property
    def available(self) -> bool:
        """False from the first failed call until `ping` answers again."""
        return not self._down

    @property
    def pending_settles(self) -> int:
        """Settles waiting in the background for the ledger to come back."""
        return len(self._settles)

    async def report_to(self, servicer: health.aio.HealthServicer, services: Sequence[str]) -> None:
        """Set these services' health to follow the ledger from now on (and now)."""
        self._servicer, self._services = servicer, tuple(services)
        if self._down:
            await self._publish()

    # --- the Ledger protocol --------------------------------------------------------------

    async def configure(
        self,
        tenant: str,
        limits: Sequence[Limit],
        latency_target_ms: int | None = None,
        *,
        only_if_new: bool = False,
    ) -> None:
        await self._guard(
            self.inner.configure(tenant, limits, latency_target_ms, only_if_new=only_if_new)
        )

    async def seed(self, seeds: Mapping[str, TenantSeed]) -> None:
        await self._guard(self.inner.seed(seeds))

    async def state(self, tenant: str) -> BudgetState:
        return await self._guard(self.inner.state(tenant))

    async def hold(
        self, tenant: str, hold_id: str, amount_micros: int, *, admit: RateLimit | None = None
    ) -> BudgetState:
        return await self._guard(self.inner.hold(tenant, hold_id, amount_micros, admit=admit))

    async def settle(
        self,
        tenant: str,
        hold_id: str,
        actual_micros: int,
        tokens: int = 0,
        *,
        met_target: bool | None = None,
    ) -> None:
        """Settle now, or, when the ledger cannot be reached, in the background until it can."""
        settle = Settle(tenant, hold_id, actual_micros, tokens, met_target)
        try:
            await self._guard(settle.on(self.inner))
        except LedgerUnavailable as error:
            self._settle_later(settle, error)

    async def checkpoint(self, tenant: str, hold_id: str, used_micros: int, tokens: int) -> None:
        await self._guard(self.inner.checkpoint(tenant, hold_id, used_micros, tokens))

    async def ping(self) -> None:
        await self._guard(self.inner.ping())

    async def aclose(self) -> None:
        """Wait (bounded) for background settles, stop the watcher, close the inner ledger."""
        await self._flush()
        if self._watcher is not None:
            self._watcher.cancel()
            await asyncio.gather(self._watcher, return_exceptions=True)
            self._watcher = None
        await self.inner.aclose()

    # --- health ---------------------------------------------------------------------------

    async def _guard(self, call: Awaitable[T]) -> T:
        try:
            return await call
        except LedgerUnavailable as error:
            await self._went_down(error)
            raise

    async def _went_down(self, error: LedgerUnavailable) -> None:
        if self._down:
            return
        self._down = True  # before any await: concurrent failures log and publish once
        log.warning(
            "budget ledger unavailable, refusing calls that need it until it answers: %s",
            error.detail or error,
        )
        # The watcher publishes both changes, in order, whatever happens to this call (it may
        # be cancelled); the failed call returns once the health check says NOT_SERVING.
        reported = asyncio.Event()
        self._watcher = asyncio.create_task(self._watch(reported))
        await reported.wait()

    async def _watch(self, reported: asyncio.Event) -> None:
        """Report the ledger down, poll `ping` until it answers, then report it up."""
        try:
            await self._publish()
        finally:
            reported.set()
        while True:
            await self._clock.sleep(self._poll_interval_s)
            try:
                await self.inner.ping()
            except LedgerUnavailable:
                continue
            break
        self._down = False
        self._watcher = None
        log.warning("budget ledger reachable again: serving")
        await self._publish()

    async def _publish(self) -> None:
        """Set every service's health to the ledger's state as it is when the lock is taken:
        publishes that interleave (down, up, down again) still end on the latest state."""
        async with self._publishing:
            status = NOT_SERVING if self._down else SERVING
            if self._servicer is not None:
                for name in self._services:
                    await self._servicer.set(name, status)

    # --- settles that must land -----------------------------------------------------------

    def _settle_later(self, settle: Settle, error: LedgerUnavailable) -> None:
        if not self._settles:
            self._settled_late = 0
            log.warning(
                "settling budget holds in the background until the ledger answers (first:"
                " tenant %r, %d micro-USD): %s",
                settle.tenant,
                settle.actual_micros,
                error.detail or error,
            )
        task = asyncio.create_task(self._retry_settle(settle))
        self._settles.add(task)
        task.add_done_callback(self._settle_done)

    async def _retry_settle(self, settle: Settle) -> None:
        delay = self._backoff_first_s
        while True:
            await self._clock.sleep(delay)
            try:
                await settle.on(self.inner)
            except LedgerUnavailable:
                delay = min(delay * 2, self._backoff_max_s)
                continue
            return

    def _settle_done(self, task: asyncio.Task[None]) -> None:
        self._settles.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:  # not an outage (those are retried): a bug, said loudly
            log.error("a background settle failed", exc_info=error)
            return
        self._settled_late += 1
        if not self._settles:
            log.warning("background settles done: %d charges landed", self._settled_late)

    async def _flush(self) -> None:
        """Give background settles `flush_timeout_s` to land; cancel (and name) the rest."""
        if not self._settles:
            return
        _, pending = await asyncio.wait(set(self._settles), timeout=self._flush_timeout_s)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if pending:
            log.error(
                "shutting down with %d budget settles not landed: the ledger still does not"
                " answer; their holds will be settled at their last checkpoint",
                len(pending),
            )


async def report_ledger_health(
    ledger: Ledger, servicer: health.aio.HealthServicer, services: Sequence[str]
) -> None:
    """Make `services`' health follow `ledger` when it is a LedgerHealth (build_runtime wraps
    the configured ledger in one)."""
    if isinstance(ledger, LedgerHealth):
        await ledger.report_to(servicer, services)
