"""The fallback policy: an attempt that fails before its first token hands the request to the
next model of the plan's fallback order that the budget can still cover.

- A complete answer ends the request (`Verdict.ANSWERED`).
- A failure before the first token (a provider error, the first-token timeout, a circuit
  found open when the attempt was admitted) falls back (`Verdict.FALL_BACK`): the next planned
  model whose hold succeeds takes over; models the tenant can no longer afford are skipped.
- A failure after the first token cannot be taken back: the caller has text, so the request
  ends as StreamBroken (`Verdict.BROKEN`) and the partial usage is billed. (A buffered
  cascade's answer is not the caller's until accepted: the engine falls back from that too.)

The order comes from the decision's plan (`routing.decision.Plan.fallbacks`); this policy
never looks at which strategy made it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from enum import Enum

from fareway.routing.catalog import ModelSpec
from fareway.routing.decision import Plan
from fareway.server.engine.attempt import AttemptResult

Afford = Callable[[ModelSpec], Awaitable[bool]]
"""Re-targets the request's hold to cover an attempt on the model; False when it cannot."""


class Verdict(Enum):
    """What a finished attempt means for the request."""

    ANSWERED = "answered"
    FALL_BACK = "fall_back"
    BROKEN = "broken"


def judge(result: AttemptResult) -> Verdict:
    """The verdict on a finished attempt; see the module docstring. A cancelled attempt is not
    judged: only its owner cancels it, and then the request itself is ending."""
    assert not result.cancelled, "a cancelled attempt ends the request, it is not judged"
    if result.error is None:
        return Verdict.ANSWERED
    return Verdict.BROKEN if result.answered else Verdict.FALL_BACK


class Fallback:
    """One request's walk down its plan's fallback order."""

    def __init__(self, plan: Plan) -> None:
        self._left = list(plan.fallbacks)

    async def next_model(self, afford: Afford, tried: Collection[str] = ()) -> ModelSpec | None:
        """The next planned model not in `tried` (model ids) that the budget covers (its hold
        already re-targeted), or None when none is left."""
        while self._left:
            model = self._left.pop(0)
            if model.id not in tried and await afford(model):
                return model
        return None
