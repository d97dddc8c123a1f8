"""Rule-based routing (F2): ordered rules over request features; the first match picks a tier."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from fareway.core.errors import FieldViolation
from fareway.routing.catalog import Catalog, ModelSpec
from fareway.routing.features import Features
from fareway.routing.request import Hints, RouteRequest
from fareway.routing.strategy import (
    FieldPath,
    Problem,
    Ranking,
    StrategyContext,
    describe_target,
    rank_towards,
    target_problem,
)


class Condition(BaseModel):
    """Every set field must hold for the condition to match; an empty condition always does.
    Keywords match case-insensitively as substrings of the last user turn (of its first and
    last 4,096 characters when it is longer; see `routing.features`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    any_keywords: tuple[str, ...] = ()
    min_words: int | None = None
    max_words: int | None = None
    min_tokens: int | None = None
    max_tokens: int | None = None
    has_code: bool | None = None
    step_types: tuple[str, ...] = ()
    labels: dict[str, str] = Field(default_factory=dict)

    def explain(self, features: Features) -> str | None:
        """Why the condition matches (a short phrase), or None when it does not."""
        reasons: list[str] = []
        if self.any_keywords:
            hit = next((k for k in self.any_keywords if k.lower() in features.query_lower), None)
            if hit is None:
                return None
            reasons.append(f"keyword '{hit}'")
        words = f"{'~' if features.word_count_estimated else ''}{features.word_count} words"
        if self.min_words is not None:
            if features.word_count < self.min_words:
                return None
            reasons.append(f"{words} (at least {self.min_words})")
        if self.max_words is not None:
            if features.word_count > self.max_words:
                return None
            reasons.append(f"{words} (at most {self.max_words})")
        if self.min_tokens is not None:
            if features.prompt_tokens < self.min_tokens:
                return None
            reasons.append(f"~{features.prompt_tokens} prompt tokens (at least {self.min_tokens})")
        if self.max_tokens is not None:
            if features.prompt_tokens > self.max_tokens:
                return None
            reasons.append(f"~{features.prompt_tokens} prompt tokens (at most {self.max_tokens})")
        if self.has_code is not None:
            if features.has_code != self.has_code:
                return None
            reasons.append("code present" if self.has_code else "no code")
        if self.step_types:
            if features.step_type not in self.step_types:
                return None
            reasons.append(f"step type '{features.step_type}'")
        for key, value in self.labels.items():
            if features.labels.get(key) != value:
                return None
            reasons.append(f"label {key}={value}")
        return " and ".join(reasons) or "always"


class Rule(BaseModel):
    """When `when` matches, route to `tier`, or to `model` when that is set instead."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    when: Condition = Condition()
    tier: str = ""
    model: str = ""

    @property
    def target(self) -> str:
        """The model when one is named, else the tier."""
        return self.model or self.tier


class RulesConfig(BaseModel):
    """The `type: rules` entry of a configuration's `strategies`."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["rules"]
    rules: list[Rule]
    default_tier: str

    def build(self, name: str, context: StrategyContext) -> RulesStrategy:
        """The strategy this configuration describes."""
        return RulesStrategy(context.catalog, self.rules, self.default_tier, name)

    def problems(self, tiers: Sequence[str], models: Sequence[str]) -> list[Problem]:
        """References to tiers and models that do not resolve, by path in this section."""
        found = target_problem(("default_tier",), self.default_tier, tiers, ())
        for index, rule in enumerate(self.rules):
            path: FieldPath = ("rules", index)
            if bool(rule.tier) == bool(rule.model):
                found.append((path, "give exactly one of tier and model"))
            elif rule.tier:
                found += target_problem((*path, "tier"), rule.tier, tiers, ())
            else:
                found += target_problem((*path, "model"), rule.model, (), models)
        return found


class RulesStrategy:
    """First matching rule wins; no match means the default tier."""

    def __init__(
        self, catalog: Catalog, rules: Sequence[Rule], default_tier: str, name: str = "rules"
    ) -> None:
        self.name = name
        self._catalog = catalog
        self._rules = tuple(rules)
        self._default_tier = default_tier

    def violations(self, hints: Hints) -> list[FieldViolation]:
        """Nothing in the hints can be wrong for this strategy."""
        return []

    async def rank(
        self, request: RouteRequest, features: Features, eligible: Sequence[ModelSpec]
    ) -> Ranking:
        for index, rule in enumerate(self._rules):
            why = rule.when.explain(features)
            if why is None:
                continue
            ranked = rank_towards(self._catalog, rule.target, eligible)
            target = describe_target(self._catalog, rule.target)
            reason = f"rule '{rule.name}' matched ({why}), so {target}"
            return Ranking(ranked, reason, {"rules.matched_index": float(index)})
        ranked = rank_towards(self._catalog, self._default_tier, eligible)
        reason = f"no rule matched, so the default {self._default_tier} tier"
        return Ranking(ranked, reason, {"rules.matched_index": -1.0})
