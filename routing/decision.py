"""A routing decision: the chosen model, the ranked alternatives, and why others were left out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from fareway.routing.catalog import ModelSpec
from fareway.routing.request import RouteRequest


@dataclass(frozen=True)
class Candidate:
    """A model the router considered: its score, or why it could not be chosen."""

    model: ModelSpec
    score: float = 0.0
    excluded_reason: str = ""


@dataclass(frozen=True)
class Decision:
    """What the router decided for one request.

    `ranked` holds the eligible models, preferred first: `ranked[0]` answers and the rest are
    the fallback order. `excluded` holds the others with their reasons.
    """

    request: RouteRequest
    strategy: str
    reason: str
    ranked: tuple[Candidate, ...]
    excluded: tuple[Candidate, ...]
    prompt_tokens: int
    signals: Mapping[str, float] = field(default_factory=dict)

    @property
    def model(self) -> ModelSpec:
        """The chosen model."""
        return self.ranked[0].model

    def max_tokens_for(self, model: ModelSpec) -> int:
        """The request's max_tokens, capped by what this model accepts."""
        return min(self.request.max_tokens, model.max_output_tokens)

    def estimated_cost_micros(self, model: ModelSpec) -> int:
        """An upper bound of what this request costs on this model."""
        return estimate_cost_micros(model, self.prompt_tokens, self.request.max_tokens)


def estimate_cost_micros(model: ModelSpec, prompt_tokens: int, max_tokens: int) -> int:
    """The one cost estimate, used for routing and for budget reservations alike: the prompt
    estimate at the input price plus every allowed output token at the output price."""
    return model.price.cost_micros(prompt_tokens, min(max_tokens, model.max_output_tokens))
