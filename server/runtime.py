"""Everything a running server needs, built once from a configuration and passed around."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from fareway.budgets.ledger import Ledger, RateLimit
from fareway.config.schema import FarewayConfig
from fareway.core.clock import Clock
from fareway.core.errors import LedgerUnavailable, PermissionDenied, StartupError, Unauthenticated
from fareway.providers.base import Provider
from fareway.routing.breaker import CircuitBreaker
from fareway.routing.catalog import Catalog, ModelSpec
from fareway.routing.embedders import EmbedderPool
from fareway.routing.latency import LatencyStats
from fareway.routing.router import Router, TenantPolicy
from fareway.routing.strategy import Strategy, StrategyContext, run_in_thread
from fareway.server.auth import KeyRing, Principal
from fareway.server.engine.engine import Engine
from fareway.server.ledger_health import LedgerHealth
from fareway.telemetry.setup import Telemetry, configure_telemetry


@dataclass
class Runtime:
    """The assembled service: configuration turned into objects. Built by `build_runtime`."""

    config: FarewayConfig
    clock: Clock
    catalog: Catalog
    router: Router
    providers: dict[str, Provider]
    ledger: Ledger
    generation: Engine
    keys: KeyRing
    policies: dict[str, TenantPolicy]
    rates: dict[str, RateLimit]
    telemetry: Telemetry
    circuit_breaker: CircuitBreaker  # the router's and the generation's: one for the process
    embedders: EmbedderPool  # the strategies' local embedders, loaded once for the process

    def policy_for(self, principal: Principal) -> TenantPolicy:
        """The routing policy of a tenant caller; admins do not generate."""
        if principal.is_admin:
            raise PermissionDenied("admin keys manage budgets; call this with a tenant key")
        policy = self.policies.get(principal.tenant)
        if policy is None:
            # Authenticated just before a reload that removed the tenant: the key is gone now.
            raise Unauthenticated("this API key's tenant is no longer configured")
        return policy

    def visible_models(self, principal: Principal) -> list[ModelSpec]:
        """The catalog entries this caller may use."""
        if principal.is_admin:
            return list(self.catalog.models)
        allowed = self.policy_for(principal).allowed_models
        return [m for m in self.catalog.models if allowed is None or m.id in allowed]

    async def aclose(self) -> None:
        """Release provider connections and the ledger; flush telemetry."""
        for provider in self.providers.values():
            await provider.aclose()
        await self.router.aclose()
        await self.ledger.aclose()
        await self.telemetry.shutdown()


async def build_runtime(
    config: FarewayConfig,
    clock: Clock,
    env: Mapping[str, str],
    ledger: Ledger | None = None,
    telemetry: Telemetry | None = None,
) -> Runtime:
    """Build the service from a validated configuration. `env` supplies keys (os.environ in
    production, a dict in tests); `ledger` defaults to the configured one. Tenants the ledger
    does not know yet get their configured budgets. `telemetry` defaults to what the OTEL_*
    variables in `env` ask for."""
    # Keys first: an unset key variable stops start-up before anything is opened.
    keys = KeyRing.from_config(config, env)
    providers = build_providers(config, clock, env)
    if ledger is None:
        ledger = config.ledger.build(clock, env)
    try:
        await ledger.seed({name: tenant.seed() for name, tenant in config.tenants.items()})
    except LedgerUnavailable as error:
        await ledger.aclose()
        raise StartupError(f"ledger ({config.ledger.type}): {error.detail or error}") from error
    # Wrapped once the store has answered: from here on an outage turns the health check
    # NOT_SERVING until it answers again, and a settle it interrupts lands later.
    ledger = LedgerHealth(ledger, clock)
    if telemetry is None:
        telemetry = configure_telemetry(env, config.telemetry.record_content)
    runtime = assemble_runtime(
        config,
        clock,
        providers,
        ledger,
        telemetry,
        LatencyStats(),
        keys,
        CircuitBreaker(clock),
        embedders=EmbedderPool(),
    )
    try:
        # Before the first call, not during it: a semantic strategy loads its embedder and
        # embeds its examples here, so health says SERVING only once routing is ready.
        await runtime.router.warm_up()
    except BaseException:
        await runtime.aclose()
        raise
    return runtime


def build_providers(
    config: FarewayConfig, clock: Clock, env: Mapping[str, str]
) -> dict[str, Provider]:
    """The configured providers, by name."""
    profiles = {m.id: m.sim.profile() for m in config.models}
    return {
        name: settings.build(name, clock, profiles, env)
        for name, settings in config.providers.items()
    }


def assemble_runtime(
    config: FarewayConfig,
    clock: Clock,
    providers: dict[str, Provider],
    ledger: Ledger,
    telemetry: Telemetry,
    latency: LatencyStats,
    keys: KeyRing,
    breaker: CircuitBreaker,
    *,
    embedders: EmbedderPool | None = None,
) -> Runtime:
    """The runtime `config` describes, around the parts that outlive a configuration: the
    ledger, telemetry, latency record, key ring, circuit breaker (which takes `config`'s
    thresholds) and embedder pool (a new one when None: its models load again on first use).
    `build_runtime` uses it at start, and a SIGHUP reload (`server.reload`) to swap in a new
    configuration."""
    breaker.configure(config.circuit_breaker.policy())
    catalog = Catalog((m.spec() for m in config.models), config.tiers)
    if embedders is None:
        embedders = EmbedderPool()
    engine = Engine(
        providers,
        ledger,
        clock,
        latency,
        telemetry,
        checkpoint_interval_s=config.ledger.checkpoint_interval_s,
        breaker=breaker,
        first_token_timeouts={
            name: settings.first_token_timeout_s for name, settings in config.providers.items()
        },
    )
    strategies: dict[str, Strategy] = {}
    context = StrategyContext(
        catalog,
        embedder=embedders.get,
        run_cpu=run_in_thread,
        complete=engine.consult,
        strategy=strategies.__getitem__,  # filled below; looked up when a request is ranked
    )
    strategies.update({name: s.build(name, context) for name, s in config.strategies.items()})
    policies = {
        name: TenantPolicy(
            strategy=tenant.strategy or config.default_strategy,
            allowed_models=(
                frozenset(tenant.allowed_models) if tenant.allowed_models is not None else None
            ),
            step_strategy=config.step_strategy,
            cascade_threshold=tenant.cascade.threshold,
            cascade_mode=tenant.cascade.mode,
            hedging=config.hedging.enabled if tenant.hedging is None else tenant.hedging,
        )
        for name, tenant in config.tenants.items()
    }
    return Runtime(
        config=config,
        clock=clock,
        catalog=catalog,
        router=Router(catalog, strategies, latency, breaker, config.server.max_attempts),
        providers=providers,
        ledger=ledger,
        generation=engine,
        keys=keys,
        policies=policies,
        rates={name: tenant.rate_limits.rate() for name, tenant in config.tenants.items()},
        telemetry=telemetry,
        circuit_breaker=breaker,
        embedders=embedders,
    )
