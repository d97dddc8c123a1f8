"""Rule-based routing (F2): ordered rules over request features; the first match picks a tier."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from fareway.routing.catalog import Catalog, ModelSpec
from fareway.routing.features import Features
from fareway.routing.request import UNKNOWN_TENANT, RouteRequest, TenantContext
from fareway.routing.strategy import (
    AcceptsAnyHints,
    FieldPath,
    Problem,
    Ranking,
    StrategyContext,
    describe_target,
    rank_towards,
    target_problem,
)

Scope = Literal["message", "instruction"]


class Keywords:
    """Whole-word keywords, found in lower-case text: not inside a longer word ("design" is not
    found in "designed"), the words of a phrase apart by any whitespace or hyphens ("step by
    step" finds "step-by-step"). One pattern per keyword, each starting with its first word: a
    single pattern of alternatives with a word-boundary check costs about 20 times more in
    Python's `re` (400 µs against 20 on a 1,500-character prompt), since it cannot scan for a
    literal prefix."""

    def __init__(self, keywords: Sequence[str]) -> None:
        self._keywords = tuple(keywords)
        self._patterns = tuple(
            re.compile(r"[\s-]+".join(re.escape(w) for w in k.lower().split()) + r"(?!\w)")
            for k in keywords
        )

    def first(self, text: str) -> str | None:
        """The first keyword, in the configured order, found in `text`, or None."""
        for keyword, pattern in zip(self._keywords, self._patterns, strict=True):
            found = pattern.search(text)
            while found is not None:
                start = found.start()
                if start == 0 or not _is_word_char(text[start - 1]):
                    return keyword
                found = pattern.search(text, start + 1)
        return None


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


@lru_cache(maxsize=1024)
def compiled(keywords: tuple[str, ...]) -> Keywords:
    """The `Keywords` of a rule, compiled once (a pydantic private attribute would cost a
    slow `__getattr__` on every request)."""
    return Keywords(keywords)


class Condition(BaseModel):
    """Every set field must hold for the condition to match; an empty condition always does.

    `scope` says what keywords and word limits read: the last user turn (`message`, the
    default), or its instruction, the turn without its payload of quoted text, fenced code or
    what follows "this:" or an introducing colon (`instruction`; see `routing.features`).
    Keywords are whole words or phrases, matched case-insensitively; in a turn longer than
    8,192 characters they are looked for in its first and last 4,096 characters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    scope: Scope = "message"
    any_keywords: tuple[str, ...] = ()
    min_words: int | None = None
    max_words: int | None = None
    min_tokens: int | None = None
    max_tokens: int | None = None
    has_code: bool | None = None
    step_types: tuple[str, ...] = ()
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("any_keywords")
    @classmethod
    def _keywords_have_words(cls, keywords: tuple[str, ...]) -> tuple[str, ...]:
        if any(not k.split() for k in keywords):
            raise ValueError("a keyword must have at least one word")
        return keywords

    def model_post_init(self, context: Any, /) -> None:
        """Compile the keywords when the configuration loads."""
        compiled(self.any_keywords)

    def explain(self, features: Features) -> str | None:
        """Why the condition matches (a short phrase), or None when it does not."""
        reasons: list[str] = []
        told = self.scope == "instruction"
        if self.any_keywords:
            # The instruction is part of the message: no keyword there, none in the instruction
            # (which is then not read at all).
            keywords = compiled(self.any_keywords)
            hit = keywords.first(features.query_lower)
            if hit is not None and told:
                hit = keywords.first(features.instruction.lower)
            if hit is None:
                return None
            reasons.append(f"keyword '{hit}'{' in the instruction' if told else ''}")
        if told:
            count, estimated = (
                features.instruction.word_count,
                features.instruction.word_count_estimated,
            )
        else:
            count, estimated = features.word_count, features.word_count_estimated
        words = f"{'~' if estimated else ''}{count} {'instruction ' if told else ''}words"
        if self.min_words is not None:
            if count < self.min_words:
                return None
            reasons.append(f"{words} (at least {self.min_words})")
        if self.max_words is not None:
            if count > self.max_words:
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


class RulesStrategy(AcceptsAnyHints):
    """First matching rule wins; no match means the default tier."""

    def __init__(
        self, catalog: Catalog, rules: Sequence[Rule], default_tier: str, name: str = "rules"
    ) -> None:
        self.name = name
        self._catalog = catalog
        self._rules = tuple(rules)
        self._default_tier = default_tier

    async def rank(
        self,
        request: RouteRequest,
        features: Features,
        eligible: Sequence[ModelSpec],
        tenant: TenantContext = UNKNOWN_TENANT,
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
