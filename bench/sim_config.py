"""The catalog the in-process benchmarks serve (`tracing.py`, `engine.py`): two `sim` models at
zero latency, so the router's own work is all there is, and one tenant, key variable
BENCH_KEY, whose cap is never in the way. The benchmarks run as scripts, so this folder is
first on their import path and they import this module by its plain name."""

from __future__ import annotations

from fareway.config.loader import parse_config
from fareway.config.schema import FarewayConfig

CONFIG = """
server: {{max_attempts: 3, grace_s: 5}}
ledger: {{type: memory}}
providers:
  sim: {{type: sim}}
models:
  - {{id: fast-1, provider: sim, provider_model_id: sim-fast, tier: fast,
      input_usd_per_mtok: 1, output_usd_per_mtok: 5, context_window: 200000,
      max_output_tokens: 8000, quality: 0.7,
      sim: {{answer_tokens: {tokens}, tokens_per_second: {pace}}}}}
  - {{id: balanced-1, provider: sim, provider_model_id: sim-balanced, tier: balanced,
      input_usd_per_mtok: 3, output_usd_per_mtok: 15, context_window: 200000,
      max_output_tokens: 8000, quality: 0.85,
      sim: {{answer_tokens: {tokens}, tokens_per_second: {pace}}}}}
strategies:
  rules: {{type: rules, default_tier: balanced, rules: []}}
default_strategy: rules
tenants:
  bench:
    api_keys: [{{env: BENCH_KEY}}]
    budget: [{{window: day, cap_usd: 1000000}}]
"""


def sim_config(answer_tokens: int, tokens_per_second: float = 0) -> FarewayConfig:
    """The configuration, each answer about `answer_tokens` long, paced at `tokens_per_second`
    (0: as fast as the event loop takes them)."""
    return parse_config(
        CONFIG.format(tokens=answer_tokens, pace=tokens_per_second), "<bench config>"
    )
