"""The router: checks hints, applies constraints and pins, asks the strategy, explains why, and
plans what follows the first attempt (fallbacks, the cascade's ladder, the hedge).

A request with tools needs the "tools" capability as if the caller had required it: models
without it are excluded with a reason naming it, and when that leaves none the request is
INVALID_ARGUMENT on `tools`. The tool definitions are part of the prompt estimate
(`features.prompt_tokens`), so the context-window constraint, the cost estimates and the
budget hold all count them. Images likewise need the "vision" capability, and each counts as
`core.content.IMAGE_TOKENS` in the estimate."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from fareway.core.errors import FarewayError, FieldViolation, InvalidRequest, NoModelFits
from fareway.routing.breaker import CircuitBreaker, CircuitOpen
from fareway.routing.catalog import Catalog, ModelSpec
from fareway.routing.decision import (
    Candidate,
    Cascade,
    CascadeMode,
    Decision,
    HedgePlan,
    Plan,
    estimate_cost_micros,
)
from fareway.routing.features import Features, extract_features, is_large
from fareway.routing.latency import LatencyStats
from fareway.routing.request import UNKNOWN_TENANT, Hints, RouteRequest, TenantContext
from fareway.routing.strategy import Lifecycle, Ranking, Scored, Strategy, unknown

PIN_STRATEGY = "pin"
TOOLS_CAPABILITY = "tools"  # what a model must offer to serve a request with tools
VISION_CAPABILITY = "vision"  # and one with images
CASCADE_THRESHOLD_SIGNAL = "cascade.threshold"  # the threshold applied, overrides and all


@dataclass(frozen=True)
class TenantPolicy:
    """What a tenant's configuration says about routing."""

    strategy: str
    allowed_models: frozenset[str] | None = None  # None: every model in the catalog
    step_strategy: str = ""  # routes requests that carry hints.step_type; "" for none
    # Overrides of a cascade strategy's threshold and mode for this tenant; None: the strategy's.
    cascade_threshold: float | None = None
    cascade_mode: CascadeMode | None = None
    # Whether a late first token is hedged on another model (with a latency target only).
    hedging: bool = True


@dataclass
class _Screening:
    """The catalog split by the constraints: who may answer, who may not and why."""

    eligible: list[ModelSpec] = field(default_factory=list)
    excluded: list[Candidate] = field(default_factory=list)
    over_ceiling: list[tuple[ModelSpec, int]] = field(default_factory=list)  # (model, estimate)
    # The request field each constraint exclusion is about, by model id, for refusals.
    blamed: dict[str, str] = field(default_factory=dict)
    # Models that could serve but for their open circuit, with why, for refusals.
    open_circuits: list[CircuitOpen] = field(default_factory=list)

    def exclude_all_but(self, keep: Sequence[ModelSpec], reason: str) -> None:
        """Keep only `keep` eligible; the others are excluded with `reason`."""
        self.excluded += [
            Candidate(m, excluded_reason=reason) for m in self.eligible if m not in keep
        ]
        self.eligible = list(keep)

    def refusal(self, among: Sequence[ModelSpec], field: str = "") -> FarewayError:
        """Why none of `among` can serve: the cost ceiling when that removed any of them (the
        request would be served if it could pay), else open circuits when they removed any (it
        would be served once one closes: CircuitOpen, UNAVAILABLE with the time until the first
        reopens), else the reason the last one went, reported on `field`, or when that is empty
        on the field that reason is about."""
        over = [(m, cost) for m, cost in self.over_ceiling if m in among]
        if over:
            cheapest, cost = min(over, key=lambda pair: pair[1])
            return NoModelFits(
                f"no allowed model fits max_cost_micros; the cheapest, {cheapest.id}, "
                f"is estimated at {cost} micro-USD"
            )
        ids = {m.id for m in among}
        circuits = [c for c in self.open_circuits if c.model in ids]
        if circuits:
            # A busy probe (no Retry-After) ends soonest; otherwise the earliest reopening.
            first = min(circuits, key=lambda c: c.retry_after_s or 0.0)
            return CircuitOpen(
                f"no model can serve this request now; {first.model}: {first}",
                model=first.model,
                retry_after_s=first.retry_after_s,
            )
        reasons = [c for c in self.excluded if c.model in among]
        if not reasons:
            return InvalidRequest.single(
                field or "messages", "no model is configured for this request"
            )
        last = reasons[-1]
        return InvalidRequest.single(
            field or self.blamed.get(last.model.id, "messages"),
            f"no model can serve this request; the last, {last.model.id}, {last.excluded_reason}",
        )


class Router:
    """Turns a request into a Decision. Stateless apart from its configuration.

    The decision's plan: the fallbacks are the ranking after its first model (at most
    `max_attempts - 1`); the cascade is the ranking strategy's ladder, if it draws one, with the
    tenant's threshold and mode and the request's mode (`hints.cascade_mode`) applied; a pin
    (hints.model or hints.tier) bypasses the strategy, so it gets no cascade. The hedge, with a
    latency target (the request's, else the tenant's) and hedging on for the tenant, is the
    fastest other eligible model (see `_hedge`). A plan with a cascade gets no hedge: a cascade's
    answers are judged before they count, so the first token is not the answer a race would
    be won by; racing ladders is left out. A pinned model gets no hedge either (the caller asked
    for that model); a pinned tier may hedge within the tier.
    """

    def __init__(
        self,
        catalog: Catalog,
        strategies: Mapping[str, Strategy],
        latency: LatencyStats | None = None,
        breaker: CircuitBreaker | None = None,
        max_attempts: int = 3,
    ) -> None:
        """`max_attempts` bounds each decision's plan: the chosen model plus that many minus
        one fallbacks."""
        self.catalog = catalog
        self.strategies = dict(strategies)
        self.latency = latency or LatencyStats()
        self.breaker = breaker  # None: no circuit breaking (routing unit tests)
        self.max_attempts = max_attempts

    async def decide(
        self, request: RouteRequest, policy: TenantPolicy, tenant: TenantContext = UNKNOWN_TENANT
    ) -> Decision:
        """Choose a model for this request, or raise InvalidRequest / NoModelFits saying why
        none can serve it."""
        problems = self.violations(request.hints, request.max_tokens, policy)
        if problems:
            raise InvalidRequest(problems)
        if is_large(request):
            await asyncio.sleep(0)  # let other callers in before the next pass over the text
        features = extract_features(request)
        if is_large(request):
            await asyncio.sleep(0)
        screening = self._screen(request, features, policy, tenant)
        hints = request.hints
        if hints.model:
            strategy_name, ranking = PIN_STRATEGY, self._pin_model(hints.model, screening)
        elif hints.tier:
            strategy_name, ranking = PIN_STRATEGY, self._pin_tier(hints.tier, screening)
        else:
            strategy_name = _strategy_for(hints, policy)
            if not screening.eligible:
                raise screening.refusal(self.catalog.models)
            strategy = self.strategies[strategy_name]
            ranking = await strategy.rank(request, features, screening.eligible, tenant)
        ranked = tuple(Candidate(s.model, s.score) for s in ranking.ranked)
        reason, signals = ranking.reason, dict(ranking.signals)
        cascade = _cascade(ranking.cascade, hints, policy)
        hedge = None
        if cascade is not None:
            reason = f"{reason}; {cascade.describe()}"
            signals[CASCADE_THRESHOLD_SIGNAL] = cascade.threshold
        elif not hints.model:
            hedge = self._hedge(tenant.target_for(request), ranked, policy)
        plan = replace(Plan.fallback_order(ranked, self.max_attempts), cascade=cascade, hedge=hedge)
        return Decision(
            request=request,
            strategy=strategy_name,
            reason=reason,
            ranked=ranked,
            excluded=tuple(screening.excluded),
            prompt_tokens=features.prompt_tokens,
            signals=signals,
            plan=plan,
            spent=tuple(ranking.spent),
            tenant=tenant,
        )

    def _hedge(
        self, target_ms: int, ranked: Sequence[Candidate], policy: TenantPolicy
    ) -> HedgePlan | None:
        """The hedge of a plan without a cascade: with a latency target and hedging on, the
        other eligible models, fastest first (the engine takes the first whose hold succeeds),
        started when the first token is `target_ms` late.

        Fastest: the lowest predicted time to first token; models not yet observed come after
        observed ones, and ties go to the cheaper tier, then to the ranking's order."""
        if target_ms <= 0 or not policy.hedging or len(ranked) < 2:
            return None

        def key(model: ModelSpec) -> tuple[bool, float, int]:
            ttft = self.latency.of(model.id).ttft_ms
            return (ttft is None, ttft or 0.0, self.catalog.tier_rank(model.tier))

        return HedgePlan(tuple(sorted((c.model for c in ranked[1:]), key=key)), target_ms)

    async def warm_up(self) -> None:
        """Warm up every strategy that has first-time work (`routing.strategy.Lifecycle`)."""
        for strategy in self.strategies.values():
            if isinstance(strategy, Lifecycle):
                await strategy.warm_up()

    async def aclose(self) -> None:
        """Close every strategy that holds something."""
        for strategy in self.strategies.values():
            if isinstance(strategy, Lifecycle):
                await strategy.aclose()

    def violations(
        self, hints: Hints, max_tokens: int, policy: TenantPolicy
    ) -> list[FieldViolation]:
        """Every problem of these hints (and max_tokens) against the catalog and strategies:
        unknown strategy, model, tier or cascade mode, max_tokens above what any model accepts,
        a capability that is empty or that no model offers, and what the ranking strategy
        refuses. Empty when there is none; the server reports these with the request's other
        problems."""
        found: list[FieldViolation] = []
        if hints.strategy and hints.strategy not in self.strategies:
            what = unknown("strategy", hints.strategy, sorted(self.strategies))
            found.append(FieldViolation("hints.strategy", what))
        if hints.model and self.catalog.get(hints.model) is None:
            known = [m.id for m in self.catalog.models]
            found.append(FieldViolation("hints.model", unknown("model", hints.model, known)))
        if hints.tier and not self.catalog.has_tier(hints.tier):
            what = unknown("tier", hints.tier, self.catalog.tiers)
            found.append(FieldViolation("hints.tier", what))
        if max_tokens > self.catalog.largest_max_output:
            found.append(
                FieldViolation(
                    "max_tokens",
                    f"{max_tokens} is larger than any model accepts "
                    f"(at most {self.catalog.largest_max_output})",
                )
            )
        found += self._capability_violations(hints.required_capabilities)
        if hints.cascade_mode and hints.cascade_mode not in CASCADE_MODES:
            what = unknown("cascade mode", hints.cascade_mode, CASCADE_MODES)
            found.append(FieldViolation("hints.cascade_mode", what))
        if not (hints.model or hints.tier):  # a pin wins, so no strategy ranks the request
            strategy = self.strategies.get(_strategy_for(hints, policy))
            if strategy is not None:
                found += strategy.violations(hints)
        return found

    def _capability_violations(self, capabilities: Sequence[str]) -> list[FieldViolation]:
        found: list[FieldViolation] = []
        for i, name in enumerate(capabilities):
            field_name = f"hints.required_capabilities[{i}]"
            if not name.strip():
                found.append(FieldViolation(field_name, "must not be empty"))
            elif name not in self.catalog.capabilities:
                what = unknown("capability", name, sorted(self.catalog.capabilities) or ["none"])
                found.append(FieldViolation(field_name, f"{what} (no model offers it)"))
        return found

    def _screen(
        self,
        request: RouteRequest,
        features: Features,
        policy: TenantPolicy,
        tenant: TenantContext,
    ) -> _Screening:
        screening = _Screening()
        ceiling = request.hints.max_cost_micros
        for model in self.catalog.models:
            blamed, reason = _constraint_violation(model, request, features, policy)
            if reason:
                screening.blamed[model.id] = blamed
            cost = estimate_cost_micros(model, features.prompt_tokens, request.max_tokens)
            if not reason and ceiling is not None and cost > ceiling:
                reason = f"estimated cost {cost} micro-USD is above max_cost_micros {ceiling}"
                screening.over_ceiling.append((model, cost))
            if reason:
                screening.excluded.append(Candidate(model, excluded_reason=reason))
            else:
                screening.eligible.append(model)
        self._skip_open_circuits(screening)
        self._skip_slow(tenant.target_for(request), screening)
        return screening

    def _skip_open_circuits(self, screening: _Screening) -> None:
        """Exclude models whose circuit is open (or whose half-open probe is in flight). Even
        when that leaves none: trying a model that keeps failing only delays the caller and
        loads the provider, so the request fails fast (see `_Screening.refusal`)."""
        if self.breaker is None:
            return
        keep: list[ModelSpec] = []
        for model in screening.eligible:
            why = self.breaker.exclusion(model.id)
            if why is None:
                keep.append(model)
            else:
                screening.open_circuits.append(why)
                screening.excluded.append(Candidate(model, excluded_reason=str(why)))
        screening.eligible = keep

    def _skip_slow(self, target_ms: int, screening: _Screening) -> None:
        """Exclude models predicted to miss the latency target, while one that meets it is left."""
        if not target_ms:
            return
        predicted = {m.id: self.latency.of(m.id).ttft_ms for m in screening.eligible}
        slow = [m for m in screening.eligible if (predicted[m.id] or 0) > target_ms]
        if len(slow) < len(screening.eligible):
            for model in slow:
                reason = (
                    f"predicted time to first token {predicted[model.id]:.0f} ms misses the "
                    f"target of {target_ms} ms"
                )
                screening.excluded.append(Candidate(model, excluded_reason=reason))
            screening.eligible = [m for m in screening.eligible if m not in slow]

    def _pin_model(self, model_id: str, screening: _Screening) -> Ranking:
        pinned = [m for m in screening.eligible if m.id == model_id]
        if not pinned:
            model = self.catalog.get(model_id)
            assert model is not None, "violations() rejects unknown models"
            raise screening.refusal([model], "hints.model")
        screening.exclude_all_but(pinned, "not the pinned model")
        return Ranking([Scored(pinned[0], 1.0)], f"hints.model pinned {model_id}")

    def _pin_tier(self, tier: str, screening: _Screening) -> Ranking:
        in_tier = [m for m in screening.eligible if m.tier == tier]
        if not in_tier:
            raise screening.refusal(
                [m for m in self.catalog.models if m.tier == tier], "hints.tier"
            )
        screening.exclude_all_but(in_tier, "not in the pinned tier")
        ranked = [Scored(m, m.quality) for m in sorted(in_tier, key=lambda m: -m.quality)]
        return Ranking(ranked, f"hints.tier pinned the {tier} tier")


CASCADE_MODES = tuple(m.value for m in CascadeMode)


def _cascade(cascade: Cascade | None, hints: Hints, policy: TenantPolicy) -> Cascade | None:
    """The strategy's cascade with the tenant's threshold and mode, and the request's mode:
    the request beats the tenant, which beats the strategy."""
    if cascade is None:
        return None
    mode = (
        CascadeMode(hints.cascade_mode)
        if hints.cascade_mode
        else policy.cascade_mode or cascade.mode
    )
    threshold = (
        policy.cascade_threshold if policy.cascade_threshold is not None else cascade.threshold
    )
    return replace(cascade, threshold=threshold, mode=mode)


def _strategy_for(hints: Hints, policy: TenantPolicy) -> str:
    """An explicit hints.strategy, else the step strategy for agent steps, else the tenant's."""
    if hints.strategy:
        return hints.strategy
    if hints.step_type and policy.step_strategy:
        return policy.step_strategy
    return policy.strategy


def _constraint_violation(
    model: ModelSpec, request: RouteRequest, features: Features, policy: TenantPolicy
) -> tuple[str, str]:
    """(the request field at fault, why `model` cannot serve), or ("", "") when it can."""
    if policy.allowed_models is not None and model.id not in policy.allowed_models:
        return "messages", f"not allowed for tenant '{request.tenant}'"
    missing = set(request.hints.required_capabilities) - model.capabilities
    if missing:
        return "hints.required_capabilities", f"lacks capabilities: {', '.join(sorted(missing))}"
    # Tools imply the capability: a model without it would ignore them or refuse the call.
    if request.tools and TOOLS_CAPABILITY not in model.capabilities:
        return "tools", f"lacks the '{TOOLS_CAPABILITY}' capability that the request's tools need"
    if features.has_images and VISION_CAPABILITY not in model.capabilities:
        return "messages", f"lacks the '{VISION_CAPABILITY}' capability that the images need"
    needed = features.prompt_tokens + min(request.max_tokens, model.max_output_tokens)
    if needed > model.context_window:
        return "messages", (
            f"prompt (~{features.prompt_tokens} tokens) plus max_tokens does not fit its "
            f"context window of {model.context_window} tokens"
        )
    return "", ""
