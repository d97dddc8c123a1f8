"""Per-model circuit breakers (F10): stop sending requests to a model that keeps failing before
its first token, and probe it again after a cool-down.

    closed ──(enough failures in the window)──▶ open ──(cool-down over, a request admitted)──▶
    half-open: one probe ──(it answers)──▶ closed
                         ──(it fails)────▶ open again

- Closed: every attempt is let through, and its outcome is counted in a sliding window of
  `window_s` seconds (in WINDOW_SLICES slices, so the window's edge is exact to a slice). The
  circuit opens when the window holds at least `min_attempts` attempts, at least `failures` of
  them failed, and the failed share is at least `failure_rate`: at low traffic the count
  decides, at high traffic the rate, so a busy model is not cut off by a handful of errors.
- Open: for `cool_down_s`, or until the provider's `Retry-After` (the longest seen among the
  failures in the window) if that is later. Routing excludes the model meanwhile.
- Half-open: once the cool-down is over, exactly one attempt (the probe) is admitted; other
  requests skip the model until the probe ends. A probe that answers closes the circuit; one
  that fails opens it again; one that ends neither way (the caller left, the request was
  refused as malformed) lets the next request probe.

What counts as a failure: an error before the first token that says something about the
model's health: rate limits, overload and 5xx, timeouts (the first-token timeout included),
connection failures and undecodable responses. A `rejected` error (a 4xx other than 429) is the
request's fault and counts neither way; a failure after the first token counts as an answer,
since the model did respond (the caller already got ABORTED).

The breaker is fed explicitly after every attempt (`record`), asked before each attempt
(`admit`) and by the router (`exclusion`); it never calls anyone. Each call that changes a
circuit's state returns the `Transition`, so the caller can trace, count and log it. Time comes
from the injected clock.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from fareway.core.clock import Clock
from fareway.core.errors import ProviderError, ProviderRejected

WINDOW_SLICES = 30  # the window is counted in this many slices of window_s / WINDOW_SLICES


class CircuitState(Enum):
    """Where a model's circuit is."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Outcome(Enum):
    """What one attempt says about its model's health."""

    SUCCESS = "success"  # the model answered (its first token, or a complete empty answer)
    FAILURE = "failure"  # a counted failure before the first token
    NEUTRAL = "neutral"  # says nothing: the request's fault, or the caller left first


class CircuitOpen(ProviderError):
    """A model was skipped because its circuit is open (or its half-open probe is busy)."""

    kind = "circuit_open"


@dataclass(frozen=True)
class BreakerPolicy:
    """When a circuit opens and for how long; see the module docstring."""

    enabled: bool = True
    failures: int = 5
    window_s: float = 60.0
    failure_rate: float = 0.5
    min_attempts: int = 0
    cool_down_s: float = 30.0


@dataclass(frozen=True)
class Transition:
    """A circuit changed state. `open_until` (UTC) is set when it opened; `cause` is the
    failure that opened it ("" for the other transitions)."""

    model: str
    before: CircuitState
    after: CircuitState
    open_until: datetime | None = None
    cause: str = ""

    def describe(self) -> str:
        """One log line."""
        text = f"circuit of model {self.model}: {self.before.value} -> {self.after.value}"
        if self.open_until is not None:
            text += f" until {utc_iso(self.open_until)}"
        return text + (f" after {self.cause}" if self.cause else "")


@dataclass(frozen=True)
class Admission:
    """Whether an attempt on a model may start: `probe` when it is the half-open probe,
    `refusal` when it may not, `transition` when admitting it moved the circuit to half-open."""

    allowed: bool
    probe: bool = False
    refusal: CircuitOpen | None = None
    transition: Transition | None = None


def outcome_of(answered: bool, error: ProviderError | None) -> Outcome:
    """How an attempt counts: `answered` when its first token (or a complete answer) arrived;
    `error` the failure before the first token, if any."""
    if answered:
        return Outcome.SUCCESS
    if error is None or isinstance(error, ProviderRejected | CircuitOpen):
        return Outcome.NEUTRAL
    return Outcome.FAILURE


def utc_iso(moment: datetime) -> str:
    """ISO-8601 UTC to the second, rounded up so that it is never before the real moment."""
    whole = moment.replace(microsecond=0)
    if whole < moment:
        whole += timedelta(seconds=1)
    return whole.isoformat().replace("+00:00", "Z")


class _Window:
    """Attempts and failures of the last `window_s` seconds, in slices."""

    def __init__(self, window_s: float) -> None:
        self._width = window_s / WINDOW_SLICES
        self._slices: deque[list[int]] = deque()  # [slice number, attempts, failures]

    def add(self, now: float, failed: bool) -> None:
        number = math.floor(now / self._width)
        if not self._slices or self._slices[-1][0] != number:
            self._slices.append([number, 0, 0])
        self._slices[-1][1] += 1
        self._slices[-1][2] += failed

    def totals(self, now: float) -> tuple[int, int]:
        """(attempts, failures) in the window ending now."""
        oldest = math.floor(now / self._width) - WINDOW_SLICES + 1
        while self._slices and self._slices[0][0] < oldest:
            self._slices.popleft()
        return sum(s[1] for s in self._slices), sum(s[2] for s in self._slices)


class _Circuit:
    """One model's circuit."""

    def __init__(self, window_s: float) -> None:
        self.state = CircuitState.CLOSED
        self.window = _Window(window_s)
        self.open_until = 0.0  # monotonic, while open
        self.open_until_utc: datetime | None = None
        self.not_before = 0.0  # monotonic: the latest Retry-After among the window's failures
        self.probing = False  # half-open and the probe is in flight


class CircuitBreaker:
    """Every model's circuit, on one clock. Shared by the router (which excludes open models)
    and the request engine (which admits attempts and records their outcomes); one instance
    lives as long as the process, across configuration reloads."""

    def __init__(self, clock: Clock, policy: BreakerPolicy | None = None) -> None:
        self._clock = clock
        self._policy = policy or BreakerPolicy()
        self._circuits: dict[str, _Circuit] = {}

    @property
    def policy(self) -> BreakerPolicy:
        """The thresholds in force."""
        return self._policy

    def configure(self, policy: BreakerPolicy) -> None:
        """Apply a reloaded configuration's thresholds. A changed policy starts every circuit
        afresh (closed, empty window): counts taken under other thresholds would mislead."""
        if policy != self._policy:
            self._policy = policy
            self._circuits.clear()

    def state(self, model_id: str) -> CircuitState:
        """The model's circuit state (an open circuit past its cool-down stays open until the
        next request is admitted as its probe)."""
        circuit = self._circuits.get(model_id)
        if circuit is None or not self._policy.enabled:
            return CircuitState.CLOSED
        return circuit.state

    def healthy(self, model_id: str) -> bool:
        """True while the circuit is closed: open and half-open models are not known to work."""
        return self.state(model_id) is CircuitState.CLOSED

    def exclusion(self, model_id: str) -> CircuitOpen | None:
        """Why routing must skip the model now, or None when a request may try it (closed, or
        past its cool-down with no probe in flight, in which case that request probes it)."""
        circuit = self._circuits.get(model_id)
        if circuit is None or not self._policy.enabled:
            return None
        now = self._clock.monotonic()
        if circuit.state is CircuitState.OPEN and now < circuit.open_until:
            assert circuit.open_until_utc is not None
            return CircuitOpen(
                f"circuit open until {utc_iso(circuit.open_until_utc)}",
                model=model_id,
                retry_after_s=circuit.open_until - now,
            )
        if circuit.probing:
            return CircuitOpen("circuit half-open: a probe attempt is in flight", model=model_id)
        return None

    def admit(self, model_id: str) -> Admission:
        """May an attempt on the model start now? Past the cool-down, the first caller is
        admitted as the probe (moving the circuit to half-open); the others are refused until
        the probe's outcome is recorded."""
        refusal = self.exclusion(model_id)
        if refusal is not None:
            return Admission(allowed=False, refusal=refusal)
        circuit = self._circuits.get(model_id)
        if circuit is None or circuit.state is CircuitState.CLOSED or not self._policy.enabled:
            return Admission(allowed=True)
        circuit.probing = True
        transition = None
        if circuit.state is CircuitState.OPEN:
            circuit.state = CircuitState.HALF_OPEN
            transition = Transition(model_id, CircuitState.OPEN, CircuitState.HALF_OPEN)
        return Admission(allowed=True, probe=True, transition=transition)

    def record(
        self,
        model_id: str,
        outcome: Outcome,
        *,
        probe: bool = False,
        retry_after_s: float | None = None,
        cause: str = "",
    ) -> Transition | None:
        """One finished attempt: its outcome, whether it was the probe, the provider's
        Retry-After and (for a failure) what went wrong. Returns the transition it caused."""
        if not self._policy.enabled:
            return None
        now = self._clock.monotonic()
        circuit = self._circuits.setdefault(model_id, _Circuit(self._policy.window_s))
        if outcome is Outcome.FAILURE and retry_after_s is not None:
            circuit.not_before = max(circuit.not_before, now + retry_after_s)
        if circuit.state is CircuitState.CLOSED:
            return self._count(model_id, circuit, outcome, now, cause)
        if circuit.state is CircuitState.OPEN:
            # A late attempt, admitted before the circuit opened: only a later Retry-After
            # matters now.
            if outcome is Outcome.FAILURE and circuit.not_before > circuit.open_until:
                self._open(circuit, now)
            return None
        if not probe:
            return None
        circuit.probing = False
        if outcome is Outcome.SUCCESS:
            self._circuits[model_id] = _Circuit(self._policy.window_s)
            return Transition(model_id, CircuitState.HALF_OPEN, CircuitState.CLOSED)
        if outcome is Outcome.FAILURE:
            return self._trip(model_id, circuit, now, cause, CircuitState.HALF_OPEN)
        return None  # neither way: the next request probes

    def _count(
        self, model_id: str, circuit: _Circuit, outcome: Outcome, now: float, cause: str
    ) -> Transition | None:
        if outcome is Outcome.NEUTRAL:
            return None
        circuit.window.add(now, outcome is Outcome.FAILURE)
        if outcome is Outcome.SUCCESS:
            return None
        attempts, failures = circuit.window.totals(now)
        policy = self._policy
        if (
            attempts >= policy.min_attempts
            and failures >= policy.failures
            and failures >= policy.failure_rate * attempts
        ):
            return self._trip(model_id, circuit, now, cause, CircuitState.CLOSED)
        return None

    def _trip(
        self, model_id: str, circuit: _Circuit, now: float, cause: str, before: CircuitState
    ) -> Transition:
        self._open(circuit, now)
        return Transition(model_id, before, CircuitState.OPEN, circuit.open_until_utc, cause)

    def _open(self, circuit: _Circuit, now: float) -> None:
        """Open (or keep open) for the cool-down or until Retry-After, whichever is later."""
        circuit.state = CircuitState.OPEN
        circuit.probing = False
        circuit.open_until = max(now + self._policy.cool_down_s, circuit.not_before)
        circuit.open_until_utc = self._clock.now() + timedelta(seconds=circuit.open_until - now)
        circuit.window = _Window(self._policy.window_s)  # a reclosed circuit starts afresh
