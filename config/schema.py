"""The shape of a fareway configuration file, and the checks that span several sections."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from fareway.budgets.ledger import Limit, OnExceed, RateLimit, TenantSeed
from fareway.budgets.pricing import Price, usd_to_micros
from fareway.budgets.registry import LedgerConfig, SqliteLedgerConfig
from fareway.budgets.windows import Window
from fareway.providers.registry import ProviderConfig
from fareway.providers.sim import (
    FailureKind,
    SimConfidence,
    SimFailure,
    SimProfile,
    SimStall,
)
from fareway.routing.breaker import BreakerPolicy
from fareway.routing.catalog import ModelSpec
from fareway.routing.decision import CascadeMode
from fareway.routing.strategies import StrategyConfig
from fareway.routing.strategy import unknown

# The default of `server.max_streams`, from bench/overhead.py on a 2-core machine: one process
# relays about 5,000 tokens a second (about 95 streams/s of 50 tokens) before it saturates, and
# a model streams 40-60 tokens a second, so about 100 streams keep a process busy; the rest of
# the 128 are streams still waiting for their first token, which cost nothing meanwhile.
DEFAULT_MAX_STREAMS = 128

FieldPath = tuple[str | int, ...]  # a location in the file, as pydantic reports it


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsSettings(_Strict):
    """TLS for the gRPC port: PEM files, read at start and on reload. With `client_ca_file`,
    callers must present a certificate that this CA signed (mutual TLS)."""

    cert_file: str
    key_file: str
    client_ca_file: str | None = None


class ServerSettings(_Strict):
    """Where and how the gRPC server listens."""

    host: str = "127.0.0.1"
    port: int = Field(50051, ge=0, le=65535)
    grace_s: float = Field(10.0, ge=0)
    max_message_bytes: int = Field(4 * 1024 * 1024, gt=0)
    # The largest request body accepted; a larger one gets INVALID_ARGUMENT naming this limit.
    max_request_bytes: int = Field(4 * 1024 * 1024, gt=0)
    tls: TlsSettings | None = None  # None: plaintext (fine on loopback or behind a mesh)
    # How many candidates a request may try before giving up (the first plus fallbacks).
    max_attempts: int = Field(3, ge=1)
    # Generate and Complete calls one server process serves at once; beyond it a call is
    # refused at once with RESOURCE_EXHAUSTED and a retry hint (`server.admission`). Applies
    # on reload. Per process: `fareway serve --workers N` serves N times as many.
    max_streams: int = Field(DEFAULT_MAX_STREAMS, ge=1)


class SimConfidenceSettings(_Strict):
    """The simulated model's self-assessed confidence: for each prompt, a fixed draw from
    `mean ± spread`, clipped to [0, 1]."""

    mean: float = Field(0.85, ge=0, le=1)
    spread: float = Field(0.1, ge=0, le=1)


class SimFailSettings(_Strict):
    """Simulated failures: a `rate` fraction of prompts (the same ones every time) fail with
    `kind`, before the first token (`after_tokens: 0`) or after that many text chunks."""

    kind: FailureKind
    rate: float = Field(1.0, ge=0, le=1)
    after_tokens: int = Field(0, ge=0)
    retry_after_s: float | None = Field(None, ge=0)  # the error's Retry-After

    @model_validator(mode="after")
    def _retry_after_fits_kind(self) -> SimFailSettings:
        # Only 429 and overload responses carry Retry-After.
        if self.retry_after_s is not None and self.kind not in ("rate_limited", "overloaded"):
            raise ValueError("retry_after_s goes only with kind rate_limited or overloaded")
        return self


class SimStallSettings(_Strict):
    """A `rate` fraction of prompts waits `seconds` more before the first token."""

    seconds: float = Field(gt=0)
    rate: float = Field(1.0, ge=0, le=1)


class SimSettings(_Strict):
    """How the simulated provider behaves for this model."""

    ttft_ms: int = Field(0, ge=0)
    tokens_per_second: float = Field(0.0, ge=0)
    answer_tokens: int = Field(60, gt=0)
    confidence: SimConfidenceSettings = SimConfidenceSettings()
    fail: SimFailSettings | None = None  # None: never fails
    stall: SimStallSettings | None = None  # None: never stalls

    def profile(self) -> SimProfile:
        """As the sim provider takes it."""
        fail, stall = self.fail, self.stall
        return SimProfile(
            self.ttft_ms,
            self.tokens_per_second,
            self.answer_tokens,
            SimConfidence(self.confidence.mean, self.confidence.spread),
            SimFailure(fail.kind, fail.rate, fail.after_tokens, fail.retry_after_s)
            if fail
            else None,
            SimStall(stall.seconds, stall.rate) if stall else None,
        )


class ModelSettings(_Strict):
    """One catalog entry. Prices are USD per million tokens, as price lists give them."""

    id: str = Field(min_length=1)
    provider: str
    provider_model_id: str = ""  # defaults to id
    tier: str
    input_usd_per_mtok: Decimal = Field(ge=0)
    output_usd_per_mtok: Decimal = Field(ge=0)
    context_window: int = Field(gt=0)
    max_output_tokens: int = Field(gt=0)
    capabilities: tuple[str, ...] = ()
    quality: float = Field(0.5, ge=0, le=1)
    sim: SimSettings = SimSettings()

    @field_validator("input_usd_per_mtok", "output_usd_per_mtok")
    @classmethod
    def _whole_micros(cls, usd: Decimal) -> Decimal:
        # Checked here so that the error names the line; `spec()` would raise it too, later.
        Price.from_usd_per_mtok(usd, usd)
        return usd

    def spec(self) -> ModelSpec:
        """As the catalog holds it."""
        return ModelSpec(
            id=self.id,
            provider=self.provider,
            provider_model_id=self.provider_model_id or self.id,
            tier=self.tier,
            price=Price.from_usd_per_mtok(self.input_usd_per_mtok, self.output_usd_per_mtok),
            context_window=self.context_window,
            max_output_tokens=self.max_output_tokens,
            capabilities=frozenset(self.capabilities),
            quality=self.quality,
        )


class KeySettings(_Strict):
    """An API key, stored only as its SHA-256. `env` names a variable whose value, when set,
    replaces the configured hash."""

    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    env: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> KeySettings:
        if self.sha256 is None and self.env is None:
            raise ValueError("give sha256, env, or both")
        return self


class LimitSettings(_Strict):
    """A cost cap on one window."""

    window: Window
    cap_usd: Decimal = Field(ge=0, decimal_places=6)  # whole micro-USD
    soft_fraction: float = Field(0.0, ge=0, le=1)
    on_exceed: OnExceed = OnExceed.REJECT

    def limit(self) -> Limit:
        """As the ledger holds it."""
        return Limit(self.window, usd_to_micros(self.cap_usd), self.soft_fraction, self.on_exceed)


class RateLimitSettings(_Strict):
    """Per-tenant limits per UTC minute, shared across replicas through the ledger."""

    requests_per_minute: int | None = Field(None, gt=0)
    tokens_per_minute: int | None = Field(None, gt=0)

    def rate(self) -> RateLimit:
        """As the ledger takes it."""
        return RateLimit(self.requests_per_minute, self.tokens_per_minute)


class TenantCascadeSettings(_Strict):
    """A tenant's overrides of the cascade strategy's threshold and mode (unset: the
    strategy's). A request's `hints.cascade_mode` beats the mode set here."""

    threshold: float | None = Field(None, ge=0, le=1)
    mode: CascadeMode | None = None


class HedgingSettings(_Strict):
    """Hedging (F9): a request with a latency target (its own or its tenant's) whose first
    token is that late also starts on the fastest other eligible model; the first to answer
    wins. Tenants may turn it on or off for themselves (`tenants.<name>.hedging`)."""

    enabled: bool = True


class TenantSettings(_Strict):
    """A tenant: its keys, routing policy, budget, rate limits and latency target. The budget
    and latency target seed the ledger the first time it sees the tenant; SetBudget changes
    them from then on."""

    api_keys: tuple[KeySettings, ...] = Field(min_length=1)
    strategy: str = ""  # empty: the configuration's default_strategy
    allowed_models: tuple[str, ...] | None = None  # None: all
    budget: tuple[LimitSettings, ...] = ()
    latency_target_ms: int = Field(0, ge=0)
    rate_limits: RateLimitSettings = RateLimitSettings()
    cascade: TenantCascadeSettings = TenantCascadeSettings()
    hedging: bool | None = None  # None: the configuration's hedging.enabled

    def seed(self) -> TenantSeed:
        """The budget this tenant's configuration gives the ledger."""
        return TenantSeed(tuple(limit.limit() for limit in self.budget), self.latency_target_ms)


class TelemetrySettings(_Strict):
    """Tracing and metrics; exporters are chosen by the standard OTEL_* variables."""

    # Prompt and answer text are personal data: off unless a deployment opts in.
    record_content: bool = False


class CircuitBreakerSettings(_Strict):
    """Per-model circuit breaking (F10): a model that keeps failing before its first token is
    skipped for a cool-down, then probed by one request. It opens when, within `window_s`, at
    least `min_attempts` attempts were made, at least `failures` of them failed, and the failed
    share is at least `failure_rate` (0: the count alone decides). It stays open `cool_down_s`,
    or until the provider's Retry-After if that is later. Applies on reload."""

    enabled: bool = True
    failures: int = Field(5, ge=1)
    window_s: float = Field(60.0, gt=0)
    failure_rate: float = Field(0.5, ge=0, le=1)
    min_attempts: int = Field(0, ge=0)
    cool_down_s: float = Field(30.0, gt=0)

    def policy(self) -> BreakerPolicy:
        """As the circuit breaker takes it."""
        return BreakerPolicy(
            enabled=self.enabled,
            failures=self.failures,
            window_s=self.window_s,
            failure_rate=self.failure_rate,
            min_attempts=self.min_attempts,
            cool_down_s=self.cool_down_s,
        )


class FarewayConfig(_Strict):
    """A whole configuration file."""

    server: ServerSettings = ServerSettings()
    # Where budgets live (`budgets.registry`); a `ledger` without a `type` is SQLite.
    ledger: LedgerConfig = SqliteLedgerConfig()
    telemetry: TelemetrySettings = TelemetrySettings()
    tiers: tuple[str, ...] = Field(("fast", "balanced", "powerful"), min_length=1)
    providers: dict[str, ProviderConfig]
    models: tuple[ModelSettings, ...] = Field(min_length=1)
    strategies: dict[str, StrategyConfig]
    default_strategy: str
    # The strategy that routes requests carrying hints.step_type (unless they name a strategy
    # or pin a model or tier); empty: step types only matter to rules that test them.
    step_strategy: str = ""
    tenants: dict[str, TenantSettings] = Field(min_length=1)
    admin_keys: tuple[KeySettings, ...] = ()
    circuit_breaker: CircuitBreakerSettings = CircuitBreakerSettings()
    hedging: HedgingSettings = HedgingSettings()

    @field_validator("ledger", mode="before")
    @classmethod
    def _sqlite_unless_named(cls, value: object) -> object:
        """`ledger:` with no `type` is SQLite, as it was before the backends were a union."""
        if isinstance(value, dict) and "type" not in value:
            return {**value, "type": "sqlite"}
        return value

    def problems(self) -> list[tuple[FieldPath, str]]:
        """Cross-references that do not resolve, each as (path into the file, message)."""
        found: list[tuple[FieldPath, str]] = []
        tiers = set(self.tiers)
        model_ids = [m.id for m in self.models]
        for i, model in enumerate(self.models):
            if model.tier not in tiers:
                found.append((("models", i, "tier"), unknown("tier", model.tier, self.tiers)))
            if model.provider not in self.providers:
                found.append(
                    (
                        ("models", i, "provider"),
                        unknown("provider", model.provider, self.providers),
                    )
                )
            if model_ids.count(model.id) > 1:
                found.append((("models", i, "id"), f"model id '{model.id}' appears twice"))
        for name, strategy in self.strategies.items():
            for path, message in strategy.problems(self.tiers, model_ids):
                found.append((("strategies", name, *path), message))
        for name, strategy in self.strategies.items():
            found += _use_problems(name, strategy, self.strategies)
        if self.default_strategy not in self.strategies:
            found.append(
                (
                    ("default_strategy",),
                    unknown("strategy", self.default_strategy, self.strategies),
                )
            )
        if self.step_strategy and self.step_strategy not in self.strategies:
            message = unknown("strategy", self.step_strategy, self.strategies)
            found.append((("step_strategy",), message))
        for name, tenant in self.tenants.items():
            if tenant.strategy and tenant.strategy not in self.strategies:
                path = ("tenants", name, "strategy")
                found.append((path, unknown("strategy", tenant.strategy, self.strategies)))
            for j, model_id in enumerate(tenant.allowed_models or ()):
                if model_id not in model_ids:
                    path = ("tenants", name, "allowed_models", j)
                    found.append((path, unknown("model", model_id, model_ids)))
        return found


def sha256_hex(key: str) -> str:
    """How API keys are stored and compared."""
    return hashlib.sha256(key.encode()).hexdigest()


def _use_problems(
    name: str, strategy: StrategyConfig, strategies: Mapping[str, StrategyConfig]
) -> list[tuple[FieldPath, str]]:
    """A strategy that builds on others (`uses()`: {field: the type it needs}) must name a
    configured strategy of that type in each such field."""
    uses = getattr(strategy, "uses", None)
    if uses is None:
        return []
    found: list[tuple[FieldPath, str]] = []
    for field, needed in uses().items():
        named = getattr(strategy, field)
        other = strategies.get(named)
        path: FieldPath = ("strategies", name, field)
        if other is None:
            found.append((path, unknown("strategy", named, strategies)))
        elif other.type != needed:
            found.append((path, f"'{named}' is a {other.type} strategy; it must be {needed}"))
    return found
