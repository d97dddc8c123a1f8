"""A real fareway gRPC server on a free port, configured for tests, and stubs to call it.

The fixtures are re-exported by conftest.py; tests import the helpers from here."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from fareway.budgets.ledger import Ledger
from fareway.config.loader import parse_config
from fareway.config.schema import FarewayConfig
from fareway.core.clock import Clock, ManualClock
from fareway.server.app import RunningServer, start_server
from fareway.server.runtime import build_runtime
from fareway.telemetry.setup import Telemetry
from fareway.v1 import budget_pb2_grpc, router_pb2, router_pb2_grpc

TENANT_KEY = "test-tenant-key"
OTHER_KEY = "test-other-key"
ADMIN_KEY = "test-admin-key"

# Three tiers like the default catalog, served by `sim` with no pacing, so tests never wait.
# `{provider}` lets a test serve the same catalog through a loopback Anthropic server instead.
CONFIG_TEMPLATE = """
server: {{max_attempts: 3, grace_s: 1}}
ledger: {{type: memory}}
providers:
  sim: {{type: sim}}
  upstream:
    type: anthropic
    api_key_env: TEST_ANTHROPIC_KEY
    base_url: {base_url}
    simulate_without_key: false
    timeout_s: 30
  compatible:
    type: openai
    api_key_env: TEST_OPENAI_KEY
    base_url: {base_url}
models:
  - {{id: fast-1, provider: {provider}, provider_model_id: up-fast, tier: fast,
      input_usd_per_mtok: 1, output_usd_per_mtok: 5, context_window: {fast_context_window},
      max_output_tokens: 8000, capabilities: [tools], quality: 0.7}}
  - {{id: balanced-1, provider: {provider}, provider_model_id: up-balanced, tier: balanced,
      input_usd_per_mtok: 3, output_usd_per_mtok: 15, context_window: 200000,
      max_output_tokens: 8000, capabilities: [tools, vision], quality: 0.85}}
  - {{id: powerful-1, provider: {provider}, provider_model_id: up-powerful, tier: powerful,
      input_usd_per_mtok: 5, output_usd_per_mtok: 25, context_window: 200000,
      max_output_tokens: 16000, capabilities: [tools, vision], quality: 0.95}}
strategies:
  rules:
    type: rules
    default_tier: balanced
    rules:
      - {{name: simple-classification, when: {{max_words: 9, any_keywords: [classify]}},
          tier: fast}}
      - {{name: complex-reasoning, when: {{any_keywords: [analyze]}}, tier: powerful}}
  steps: {{type: per_step}}
  cost: {{type: cost}}
default_strategy: rules
step_strategy: steps
tenants:
  acme:
    api_keys: [{{env: ACME_KEY}}]
    budget: [{{window: day, cap_usd: {day_cap_usd}}}]
    latency_target_ms: 5000
    rate_limits: {{requests_per_minute: {requests_per_minute}}}
  other:
    api_keys: [{{env: OTHER_KEY}}]
admin_keys: [{{env: ADMIN_KEY}}]
"""

ENV = {
    "ACME_KEY": TENANT_KEY,
    "OTHER_KEY": OTHER_KEY,
    "ADMIN_KEY": ADMIN_KEY,
    "TEST_ANTHROPIC_KEY": "sk-test",
    "TEST_OPENAI_KEY": "sk-openai-test",
}


def make_config(
    provider: str = "sim",
    base_url: str = "http://127.0.0.1:9",
    day_cap_usd: float = 100,
    fast_context_window: int = 200_000,
    requests_per_minute: int = 10_000,
    template: str = CONFIG_TEMPLATE,
) -> FarewayConfig:
    """The test configuration, its models served by `provider`: "sim", "upstream" (Anthropic
    at `base_url`) or "compatible" (OpenAI-compatible at `base_url`). `template` is
    CONFIG_TEMPLATE or a test's edit of it."""
    text = template.format(
        provider=provider,
        base_url=base_url,
        day_cap_usd=day_cap_usd,
        fast_context_window=fast_context_window,
        requests_per_minute=requests_per_minute,
    )
    return parse_config(text, "<test config>")


class GatedClock(ManualClock):
    """A manual clock whose non-zero sleeps wait for `gate`: the sim model's pacing, so a
    stream stops after its first token until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            await self.gate.wait()
        await super().sleep(seconds)


def kinds(events: Sequence[router_pb2.GenerateEvent]) -> list[str]:
    """The events' kinds, a run of deltas as one: text that queued while a write was in flight
    arrives joined, so how many deltas carry an answer depends on timing (tests check the text
    itself where it matters)."""
    out: list[str] = []
    for event in events:
        kind = event.WhichOneof("event") or ""
        if not (kind == "delta" and out and out[-1] == "delta"):
            out.append(kind)
    return out


def metadata(key: str) -> tuple[tuple[str, str], ...]:
    """Call metadata carrying an API key."""
    return (("authorization", f"Bearer {key}"),)


def user_request(text: str, max_tokens: int = 256, **hints: Any) -> router_pb2.GenerateRequest:
    """A one-turn request."""
    return router_pb2.GenerateRequest(
        messages=[router_pb2.Message(role=router_pb2.ROLE_USER, content=text)],
        max_tokens=max_tokens,
        hints=router_pb2.RoutingHints(**hints),
    )


@dataclass
class Harness:
    """A running server and async stubs bound to it."""

    running: RunningServer
    channel: grpc.aio.Channel
    router: router_pb2_grpc.RouterServiceStub
    budgets: budget_pb2_grpc.BudgetServiceStub

    @property
    def ledger(self) -> Any:
        return self.running.runtime.ledger


HarnessFactory = Callable[..., Any]


@pytest.fixture
async def serve() -> AsyncIterator[HarnessFactory]:
    """Start servers on demand: `await serve(config, clock=..., env=..., ledger=...,
    telemetry=...)`; all stop at the end (closing their ledgers and flushing telemetry)."""
    started: list[Harness] = []

    async def start(
        config: FarewayConfig | None = None,
        clock: Clock | None = None,
        env: Mapping[str, str] | None = None,
        ledger: Ledger | None = None,
        telemetry: Telemetry | None = None,
    ) -> Harness:
        runtime = await build_runtime(
            config or make_config(),
            clock or ManualClock(),
            env if env is not None else ENV,
            ledger,
            telemetry,
        )
        running = await start_server(runtime, "127.0.0.1", 0)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
        harness = Harness(
            running,
            channel,
            router_pb2_grpc.RouterServiceStub(channel),
            budget_pb2_grpc.BudgetServiceStub(channel),
        )
        started.append(harness)
        return harness

    yield start
    for harness in started:
        await harness.channel.close()
        await harness.running.stop(grace_s=0)


@pytest.fixture
async def harness(serve: HarnessFactory) -> Harness:
    """One server with the sim-backed test configuration and a manual clock."""
    result: Harness = await serve()
    return result
