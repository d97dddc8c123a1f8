"""Per-step routing for agents (F6): `hints.step_type` picks the tier or model for that step.

An agent's steps differ in what they need: planning and the final answer want the strongest
model, tool-call decisions and summaries a balanced one, classifying a tool's result the
fastest. The mapping is configuration; the defaults follow that split.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from fareway.core.errors import FieldViolation, InvalidRequest
from fareway.routing.catalog import Catalog, ModelSpec
from fareway.routing.echo import echo
from fareway.routing.features import Features
from fareway.routing.request import UNKNOWN_TENANT, Hints, RouteRequest, TenantContext
from fareway.routing.strategy import (
    Problem,
    Ranking,
    StrategyContext,
    describe_target,
    rank_towards,
    target_problem,
)

DEFAULT_STEPS = {
    "planning": "powerful",
    "final_synthesis": "powerful",
    "tool_call_decision": "balanced",
    "summarization": "balanced",
    "result_classification": "fast",
}


class PerStepConfig(BaseModel):
    """The `type: per_step` entry of `strategies`: step type → tier name or model id."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["per_step"]
    steps: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_STEPS))

    def build(self, name: str, context: StrategyContext) -> PerStepStrategy:
        """The strategy this configuration describes."""
        return PerStepStrategy(context.catalog, self.steps, name)

    def problems(self, tiers: Sequence[str], models: Sequence[str]) -> list[Problem]:
        """Steps whose target is neither a tier nor a model."""
        found: list[Problem] = []
        for step, target in self.steps.items():
            found += target_problem(("steps", step), target, tiers, models)
        return found


class PerStepStrategy:
    """Routes by the request's step type; a missing or unknown step type is the caller's error."""

    def __init__(self, catalog: Catalog, steps: Mapping[str, str], name: str = "steps") -> None:
        self.name = name
        self._catalog = catalog
        self._steps = dict(steps)

    def violations(self, hints: Hints) -> list[FieldViolation]:
        """A missing or unknown step type, naming the configured ones."""
        step = hints.step_type
        if step in self._steps:
            return []
        known = ", ".join(self._steps)
        problem = f"unknown step type '{echo(step)}'" if step else "required by per-step routing"
        return [FieldViolation("hints.step_type", f"{problem}; known: {known}")]

    async def rank(
        self,
        request: RouteRequest,
        features: Features,
        eligible: Sequence[ModelSpec],
        tenant: TenantContext = UNKNOWN_TENANT,
    ) -> Ranking:
        problems = self.violations(request.hints)
        if problems:
            raise InvalidRequest(problems)
        step = features.step_type
        target = self._steps[step]
        ranked = rank_towards(self._catalog, target, eligible)
        reason = f"step type '{step}' maps to {describe_target(self._catalog, target)}"
        return Ranking(ranked, reason)
