"""The router: checks hints, applies constraints and pins, asks the strategy, explains why."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from fareway.core.errors import InvalidRequest
from fareway.routing.catalog import Catalog, ModelSpec
from fareway.routing.decision import Candidate, Decision
from fareway.routing.features import Features, extract_features
from fareway.routing.request import RouteRequest
from fareway.routing.strategy import Ranking, Scored, Strategy

PIN_STRATEGY = "pin"


@dataclass(frozen=True)
class TenantPolicy:
    """What a tenant's configuration says about routing."""

    strategy: str
    allowed_models: frozenset[str] | None = None  # None: every model in the catalog


class Router:
    """Turns a request into a Decision. Stateless apart from its configuration."""

    def __init__(self, catalog: Catalog, strategies: Mapping[str, Strategy]) -> None:
        self.catalog = catalog
        self.strategies = dict(strategies)

    async def decide(self, request: RouteRequest, policy: TenantPolicy) -> Decision:
        """Choose a model for this request, or raise InvalidRequest saying what to change."""
        self._check_hints(request)
        features = extract_features(request)
        eligible, excluded = self._apply_constraints(request, features, policy)
        hints = request.hints
        if hints.model:
            ranking = self._pin_model(hints.model, eligible, excluded)
            strategy_name = PIN_STRATEGY
        elif hints.tier:
            ranking, eligible = self._pin_tier(hints.tier, eligible, excluded)
            strategy_name = PIN_STRATEGY
        else:
            strategy_name = hints.strategy or policy.strategy
            if not eligible:
                raise _nothing_eligible(excluded)
            ranking = await self.strategies[strategy_name].rank(request, features, eligible)
        return Decision(
            request=request,
            strategy=strategy_name,
            reason=ranking.reason,
            ranked=tuple(Candidate(s.model, s.score) for s in ranking.ranked),
            excluded=tuple(excluded),
            prompt_tokens=features.prompt_tokens,
            signals=dict(ranking.signals),
        )

    def _check_hints(self, request: RouteRequest) -> None:
        hints = request.hints
        if hints.strategy and hints.strategy not in self.strategies:
            known = ", ".join(sorted(self.strategies))
            raise InvalidRequest.single(
                "hints.strategy", f"unknown strategy '{hints.strategy}'; known: {known}"
            )
        if hints.model and self.catalog.get(hints.model) is None:
            known = ", ".join(m.id for m in self.catalog.models)
            raise InvalidRequest.single(
                "hints.model", f"unknown model '{hints.model}'; known: {known}"
            )
        if hints.tier and not self.catalog.has_tier(hints.tier):
            known = ", ".join(self.catalog.tiers)
            raise InvalidRequest.single(
                "hints.tier", f"unknown tier '{hints.tier}'; known: {known}"
            )
        if request.max_tokens > self.catalog.largest_max_output:
            raise InvalidRequest.single(
                "max_tokens",
                f"{request.max_tokens} is larger than any model accepts "
                f"(at most {self.catalog.largest_max_output})",
            )

    def _apply_constraints(
        self, request: RouteRequest, features: Features, policy: TenantPolicy
    ) -> tuple[list[ModelSpec], list[Candidate]]:
        eligible: list[ModelSpec] = []
        excluded: list[Candidate] = []
        for model in self.catalog.models:
            reason = _exclusion_reason(model, request, features, policy)
            if reason:
                excluded.append(Candidate(model, excluded_reason=reason))
            else:
                eligible.append(model)
        return eligible, excluded

    def _pin_model(
        self, model_id: str, eligible: Sequence[ModelSpec], excluded: list[Candidate]
    ) -> Ranking:
        for candidate in excluded:
            if candidate.model.id == model_id:
                raise InvalidRequest.single(
                    "hints.model", f"pinned model '{model_id}' {candidate.excluded_reason}"
                )
        pinned = next(m for m in eligible if m.id == model_id)
        excluded.extend(
            Candidate(m, excluded_reason="not the pinned model")
            for m in eligible
            if m is not pinned
        )
        return Ranking([Scored(pinned, 1.0)], f"hints.model pinned {model_id}")

    def _pin_tier(
        self, tier: str, eligible: Sequence[ModelSpec], excluded: list[Candidate]
    ) -> tuple[Ranking, list[ModelSpec]]:
        in_tier = [m for m in eligible if m.tier == tier]
        if not in_tier:
            raise _nothing_eligible([c for c in excluded if c.model.tier == tier], "hints.tier")
        excluded.extend(
            Candidate(m, excluded_reason="not in the pinned tier")
            for m in eligible
            if m.tier != tier
        )
        ranked = [Scored(m, m.quality) for m in sorted(in_tier, key=lambda m: -m.quality)]
        return Ranking(ranked, f"hints.tier pinned the {tier} tier"), in_tier


def _exclusion_reason(
    model: ModelSpec, request: RouteRequest, features: Features, policy: TenantPolicy
) -> str:
    if policy.allowed_models is not None and model.id not in policy.allowed_models:
        return f"not allowed for tenant '{request.tenant}'"
    missing = request.hints.required_capabilities - model.capabilities
    if missing:
        return f"lacks capabilities: {', '.join(sorted(missing))}"
    needed = features.prompt_tokens + min(request.max_tokens, model.max_output_tokens)
    if needed > model.context_window:
        return (
            f"prompt (~{features.prompt_tokens} tokens) plus max_tokens does not fit its "
            f"context window of {model.context_window} tokens"
        )
    return ""


def _nothing_eligible(excluded: Sequence[Candidate], field: str = "messages") -> InvalidRequest:
    if not excluded:
        return InvalidRequest.single(field, "no model is configured for this request")
    last = excluded[-1]
    return InvalidRequest.single(
        field, f"no model can serve this request; the last, {last.model.id}, {last.excluded_reason}"
    )
