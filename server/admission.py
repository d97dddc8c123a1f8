"""Admission control: a bound on the streams (Generate and Complete calls) one server process
serves at once, and an honest "come back in t" for the callers beyond it.

Why refuse instead of queue: every admitted stream shares the same event loop and cores, so
past a point each extra stream makes all the others late (at 500 concurrent streams on two
cores the median time to first token was 9.4 s). A queue would only hide that lateness inside
the server; refusing at once with RESOURCE_EXHAUSTED lets the caller retry elsewhere (another
worker, another replica) or later, while the admitted streams keep their latency.

How: `Admission` is a plain counter owned by the process, not by a configuration. It is
created once in `start_server` and consulted by the interceptor before the request is parsed,
routed or held in the ledger, so a refusal costs almost nothing. It lives across SIGHUP
reloads; its bound is read from the configuration new calls get (`limit()` is called at every
admission), so a reload that changes `server.max_streams` applies to the next call at once.
Lowering the bound below what is in flight ends nothing: new calls are refused until enough
of the running ones have finished.

A `Slot` is taken before the handler runs and released by a `with` around it, so it is
released however the call ends: an answer, an error, or cancellation when the caller goes
away.

The retry hint: the time a caller is told to wait is an exponentially weighted mean of the
durations of recently finished streams (measured with the injected clock), clamped to
[MIN_RETRY_S, MAX_RETRY_S], and INITIAL_RETRY_S before any stream has finished. It is a hint
of when a slot is likely free, not a promise: streams end one after another, so the first
slot frees up well before the mean duration has passed, but a caller told too little would
only be refused again, while one told too much waits a little; the clamp keeps both small.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

from fareway.core.clock import Clock
from fareway.core.errors import ServerBusy

# The calls that take a slot: the ones that call a model and stream its answer. Route,
# ListModels and BudgetService calls are cheap unary calls and are never refused for load.
BOUNDED_METHODS = frozenset(
    {"/fareway.v1.RouterService/Generate", "/fareway.v1.RouterService/Complete"}
)
INITIAL_RETRY_S = 0.5  # before any stream has finished
MIN_RETRY_S = 0.05
MAX_RETRY_S = 2.0
# The weight of the latest duration in the mean: about the last ten streams count.
SMOOTHING = 0.2


class Admission:
    """Counts the streams in flight against `limit()` (called at each admission, so it can
    follow the current configuration), and estimates when a slot frees up."""

    def __init__(self, limit: Callable[[], int], clock: Clock) -> None:
        self._limit = limit
        self._clock = clock
        self._in_flight = 0
        self._mean_s: float | None = None  # of finished streams' durations; None: none yet

    @property
    def in_flight(self) -> int:
        """Streams admitted and not yet ended."""
        return self._in_flight

    def retry_after_s(self) -> float:
        """How long a refused caller should wait before trying again."""
        if self._mean_s is None:
            return INITIAL_RETRY_S
        return min(MAX_RETRY_S, max(MIN_RETRY_S, self._mean_s))

    def admit(self) -> Slot:
        """One slot, to release when the call ends (`with` does it); ServerBusy, at once,
        when none is free."""
        limit = self._limit()
        if self._in_flight >= limit:
            raise ServerBusy(
                f"this server is at its limit of {limit} concurrent streams; retry shortly",
                limit=limit,
                retry_after_s=self.retry_after_s(),
            )
        self._in_flight += 1
        return Slot(self, self._clock.monotonic())

    def _release(self, started: float) -> None:
        self._in_flight -= 1
        self._record(self._clock.monotonic() - started)

    def _record(self, duration_s: float) -> None:
        if self._mean_s is None:
            self._mean_s = duration_s
        else:
            self._mean_s += SMOOTHING * (duration_s - self._mean_s)


@dataclass
class Slot:
    """One admitted stream's slot. Leaving its `with` block, however the block ends, gives the
    slot back and counts the stream's duration; releasing twice releases once."""

    admission: Admission
    started: float  # the clock's monotonic time at admission
    released: bool = False

    def release(self) -> None:
        """Give the slot back."""
        if not self.released:
            self.released = True
            self.admission._release(self.started)

    def __enter__(self) -> Slot:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
