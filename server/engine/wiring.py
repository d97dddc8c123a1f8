"""What every run of one engine shares (and a strategy's own model call, `consult.py`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fareway.budgets.ledger import Ledger
from fareway.core.clock import Clock
from fareway.providers.base import Provider
from fareway.server.engine.breaker import BreakerPolicy
from fareway.server.engine.observe import Observer


@dataclass(frozen=True)
class Wiring:
    """The providers, the ledger, the clock, telemetry and the breaker, and the settings every
    attempt applies."""

    providers: Mapping[str, Provider]
    ledger: Ledger
    clock: Clock
    observer: Observer
    breaker: BreakerPolicy
    checkpoint_interval_s: float
    first_token_timeouts: Mapping[str, float | None]
