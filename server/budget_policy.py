"""What a tenant's budget does to a routing decision (F17): downgrade above the soft fraction,
refuse or serve only the cheapest model at the hard cap.

It lives in the server because it joins two packages that know nothing of each other: the
router's Decision and the ledger's BudgetState.
"""

from __future__ import annotations

from dataclasses import replace

from fareway.budgets.ledger import BudgetState, LimitState, OnExceed, budget_exceeded
from fareway.routing.catalog import Catalog, ModelSpec
from fareway.routing.decision import Candidate, Decision


def apply_budget(decision: Decision, state: BudgetState, catalog: Catalog) -> Decision:
    """The decision as the tenant's budget allows it; raises BudgetExceeded when nothing fits."""
    top = decision.model
    cost = decision.estimated_cost_micros(top)
    binding = [s for s in state.limits if cost > s.remaining_micros]
    if binding:
        return _at_hard_cap(decision, state, binding, cost)
    soft = [s for s in state.limits if _above_soft_fraction(s)]
    if not soft:
        return decision
    top_rank = catalog.tier_rank(top.tier)
    cheaper = [c.model for c in decision.ranked if catalog.tier_rank(c.model.tier) < top_rank]
    if not cheaper:
        return decision
    limit = soft[0].limit
    why = (
        f"downgraded from {top.id}: tenant is above {limit.soft_fraction:.0%} of its "
        f"{limit.window.value} cap"
    )
    return _lead_with(decision, cheaper[0], why)


def _at_hard_cap(
    decision: Decision, state: BudgetState, binding: list[LimitState], cost: int
) -> Decision:
    tightest = min(binding, key=lambda s: s.remaining_micros)
    if any(s.limit.on_exceed is OnExceed.REJECT for s in binding):
        raise budget_exceeded(state.tenant, tightest, cost)
    cheapest = min((c.model for c in decision.ranked), key=decision.estimated_cost_micros)
    cheapest_cost = decision.estimated_cost_micros(cheapest)
    for limit_state in state.limits:
        if cheapest_cost > limit_state.remaining_micros:
            raise budget_exceeded(state.tenant, limit_state, cheapest_cost)
    why = f"the {tightest.limit.window.value} cap is nearly reached, so only the cheapest model"
    return _lead_with(decision, cheapest, why, only=True)


def _above_soft_fraction(state: LimitState) -> bool:
    limit = state.limit
    used = state.spent_micros + state.reserved_micros
    return limit.soft_fraction > 0 and used >= limit.soft_fraction * limit.cap_micros


def _lead_with(decision: Decision, model: ModelSpec, why: str, only: bool = False) -> Decision:
    """`model` first, the others after it in their order (or excluded, with `only`); the plan
    is rebuilt from the new order, so its fallbacks never name an excluded model."""
    lead = [c for c in decision.ranked if c.model is model]
    rest = [c for c in decision.ranked if c.model is not model]
    excluded = decision.excluded
    if only:
        excluded = (*excluded, *(Candidate(c.model, excluded_reason=why) for c in rest))
        rest = []
    ranked = (*lead, *rest)
    return replace(
        decision,
        ranked=ranked,
        plan=decision.plan.reranked(ranked),
        excluded=excluded,
        reason=f"{decision.reason}; {why}",
        signals={**decision.signals, "budget.downgraded": 1.0},
    )
