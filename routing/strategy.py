"""The strategy plug-in point: request features in, ranked candidates with a reason out.

A strategy sees only models that passed the constraints, and only ranks them; the router
chooses, explains exclusions and prices the result. One file per strategy under
`routing/strategies/`, found through the registry in `routing/strategies/__init__.py`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar, runtime_checkable

from fareway.core.errors import FieldViolation, ProviderError
from fareway.routing.catalog import Catalog, ModelSpec
from fareway.routing.decision import AttemptUsage, Cascade
from fareway.routing.echo import echo
from fareway.routing.embedding import Embedder, EmbedderFor
from fareway.routing.features import Features
from fareway.routing.request import UNKNOWN_TENANT, Hints, RouteRequest, TenantContext


@dataclass(frozen=True)
class Scored:
    """A model and the strategy's score for it (higher is preferred)."""

    model: ModelSpec
    score: float


@dataclass(frozen=True)
class Ranking:
    """A strategy's answer: every eligible model, most preferred first, and why. A strategy
    that escalates on low confidence (`cascade`) returns its ladder too; the router applies the
    tenant's and the request's overrides and puts it on the decision's plan."""

    ranked: Sequence[Scored]
    reason: str
    signals: Mapping[str, float] = field(default_factory=dict)
    cascade: Cascade | None = None
    spent: tuple[AttemptUsage, ...] = ()
    """Model calls the strategy made to decide (a classifier's), already billed; the request's
    stream reports each as a `usage` and counts it in its total."""


T = TypeVar("T")


class RunCpu(Protocol):
    """Runs blocking CPU work (embedding, say) off the event loop and returns its result."""

    def __call__(self, work: Callable[[], T]) -> Awaitable[T]: ...


async def run_inline(work: Callable[[], T]) -> T:
    """`RunCpu` for tests and tools without an event loop to protect: runs `work` right here."""
    return work()


def run_in_thread(work: Callable[[], T]) -> Awaitable[T]:
    """`RunCpu` the server uses: the event loop's default executor."""
    return asyncio.get_running_loop().run_in_executor(None, work)


def no_embedders(name: str) -> Embedder:
    """`EmbedderFor` where no embedder is available."""
    raise KeyError(f"no embedder named {name!r} is available")


@dataclass(frozen=True)
class Completion:
    """A model's answer to a strategy's own question, and what it cost (already billed to the
    request's tenant, whether or not it answered). `error` is None for a complete answer; else
    the failure (a `ProviderTimeout` when time ran out) and `text` what came before it."""

    text: str
    usage: AttemptUsage
    error: ProviderError | None = None


class Complete(Protocol):
    """A billed model call for a strategy (the LLM classifier): held on the request's tenant's
    budget, traced as an attempt of the request, settled to what it used. A provider's failure
    comes back in the `Completion`; raises BudgetExceeded (nothing called) when the tenant
    cannot afford the call."""

    def __call__(
        self,
        request: RouteRequest,
        model: ModelSpec,
        system: str,
        prompt: str,
        max_tokens: int,
        timeout_s: float,
    ) -> Awaitable[Completion]: ...


async def no_model_calls(
    request: RouteRequest,
    model: ModelSpec,
    system: str,
    prompt: str,
    max_tokens: int,
    timeout_s: float,
) -> Completion:
    """`Complete` where the server gives no model calls (routing unit tests)."""
    raise RuntimeError("this context makes no model calls")


StrategyLookup = Callable[[str], "Strategy"]
"""Another configured strategy by name (for strategies that build on one, as the classifier on
`semantic`); raises KeyError for a name that is not configured."""


def no_strategies(name: str) -> Strategy:
    """`StrategyLookup` where no other strategy is available."""
    raise KeyError(f"no strategy named {name!r} is available")


@dataclass(frozen=True)
class StrategyContext:
    """What the server gives every strategy besides its configuration: the catalog, the shared
    local embedders, a way to run CPU work without blocking the event loop, and billed model
    calls."""

    catalog: Catalog
    embedder: EmbedderFor = no_embedders
    run_cpu: RunCpu = run_inline
    complete: Complete = no_model_calls
    strategy: StrategyLookup = no_strategies


class Strategy(Protocol):
    """Ranks the eligible models for one request."""

    name: str

    def violations(self, hints: Hints) -> list[FieldViolation]:
        """What this strategy would refuse in `hints` (an empty list when nothing), so that the
        router reports it with every other problem of the request before ranking."""
        ...

    async def rank(
        self,
        request: RouteRequest,
        features: Features,
        eligible: Sequence[ModelSpec],
        tenant: TenantContext = UNKNOWN_TENANT,
    ) -> Ranking:
        """Order `eligible` (never empty) by preference and say why the first one leads;
        `tenant` is what the server knows of the tenant (its remaining budget, its target)."""
        ...


class AcceptsAnyHints:
    """A base for strategies that nothing in the hints can be wrong for."""

    def violations(self, hints: Hints) -> list[FieldViolation]:
        """Nothing in the hints can be wrong for this strategy."""
        return []


@runtime_checkable
class Lifecycle(Protocol):
    """What a strategy with slow first-time work or resources of its own also has: the router
    warms it up before the server reports SERVING (a model loaded, examples embedded), and
    closes it when its configuration is done with."""

    async def warm_up(self) -> None:
        """Do the slow first-time work now, not on the first request."""
        ...

    async def aclose(self) -> None:
        """Release what the strategy holds."""
        ...


def rank_towards(catalog: Catalog, target: str, eligible: Sequence[ModelSpec]) -> list[Scored]:
    """Order models by closeness to `target`, a tier name or a model id (that model first).

    Closeness: the target tier itself, then stronger tiers, then weaker ones; within a tier,
    higher quality first. Scores fall with tier distance, so the tail doubles as the fallback
    order."""
    pinned = catalog.get(target)
    target_rank = catalog.tier_rank(pinned.tier if pinned else target)

    def key(model: ModelSpec) -> tuple[bool, int, int, float]:
        distance = catalog.tier_rank(model.tier) - target_rank
        return (model is not pinned, abs(distance), 0 if distance >= 0 else 1, -model.quality)

    return [
        Scored(m, 1.0 / (1 + abs(catalog.tier_rank(m.tier) - target_rank)))
        for m in sorted(eligible, key=key)
    ]


def describe_target(catalog: Catalog, target: str) -> str:
    """`model X` or `the X tier`, for reasons."""
    return f"model {target}" if catalog.get(target) else f"the {target} tier"


FieldPath = tuple[str | int, ...]  # a location in a configuration file
Problem = tuple[FieldPath, str]  # a location and what is wrong there


def target_problem(
    path: FieldPath, target: str, tiers: Sequence[str], models: Sequence[str]
) -> list[Problem]:
    """A problem when `target` is neither a configured tier nor a model id."""
    if target in tiers or target in models:
        return []
    what = "tier or model" if tiers and models else ("tier" if tiers else "model")
    return [(path, unknown(what, target, [*tiers, *models]))]


def unknown(what: str, value: str, known: Iterable[object]) -> str:
    """The one wording for a name that does not resolve: it lists the names that do. The value
    is quoted through `echo`, since it may be a caller's and of any length."""
    return f"unknown {what} '{echo(value)}'; known: {', '.join(str(k) for k in known)}"
