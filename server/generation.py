"""One request's life after routing: hold budget, run the plan's attempts, stream, settle.

The work is done by the engine in `server/engine/` (see `engine.py` for its shape and
guarantees); this module is the name the rest of the server knows it by: `Generation` (the
engine) and the events the servicer encodes.

Knows nothing of gRPC: the engine sends plain events that the servicer turns into protobuf.
The guarantee it keeps: whatever happens (success, provider failure, client cancellation,
deadline), the hold is settled exactly once, to what the attempts actually used. While text
streams, the usage so far is checkpointed into the hold (`checkpoints.py`), so a process that
dies mid-stream still has that much billed.

With the ledger unreachable nothing streams unbilled: admission, the hold and the budget
check come before the first event and raise LedgerUnavailable; a settle that fails after the
text went out is retried in the background by the ledger wrapper (`ledger_health.py`).

Each attempt is first admitted by the circuit breaker (`routing.breaker`): a candidate whose
circuit opened since the decision is skipped like a failure before its first token, with a
`fallback`. An attempt's first token must come within its provider's `first_token_timeout_s`.
Every finished attempt is fed to the breaker (`engine/observe.py`); a transition it causes is
traced on the request's route span, counted and logged.
"""

from __future__ import annotations

from fareway.server.engine.engine import Engine as Generation
from fareway.server.engine.engine import Run
from fareway.server.engine.events import (
    AttemptUsage,
    Billed,
    Delta,
    Escalated,
    FallbackTaken,
    Finished,
    GenerationEvent,
    Hedged,
    Routed,
)

__all__ = [
    "AttemptUsage",
    "Billed",
    "Delta",
    "Escalated",
    "FallbackTaken",
    "Finished",
    "Generation",
    "GenerationEvent",
    "Hedged",
    "Routed",
    "Run",
]
