"""What the configuration's cascade and hedging settings become: each tenant's routing policy,
as the server builds it."""

from __future__ import annotations

from fareway.budgets.memory import MemoryLedger
from fareway.config.loader import parse_config
from fareway.core.clock import ManualClock
from fareway.routing.decision import CascadeMode
from fareway.server.runtime import build_runtime
from tests.config.test_loader import DEFAULT, edited

TENANTS = """
  quiet:
    api_keys: [{env: QUIET_KEY}]
    hedging: false
    cascade: {threshold: 0.6}
  eager:
    api_keys: [{env: EAGER_KEY}]
    hedging: true
    cascade: {mode: speculative}
"""
ENV = {"QUIET_KEY": "quiet-key", "EAGER_KEY": "eager-key"}


async def policies(text: str) -> dict[str, tuple[bool, float | None, CascadeMode | None]]:
    clock = ManualClock()
    runtime = await build_runtime(parse_config(text, "f.yaml"), clock, ENV, MemoryLedger(clock))
    try:
        return {
            name: (p.hedging, p.cascade_threshold, p.cascade_mode)
            for name, p in runtime.policies.items()
        }
    finally:
        await runtime.aclose()


async def test_tenants_follow_the_global_hedging_switch_unless_they_set_their_own() -> None:
    text = edited("tenants:\n", f"tenants:\n{TENANTS.lstrip(chr(10))}", DEFAULT)

    found = await policies(text)

    assert found == {
        "quiet": (False, 0.6, None),
        "eager": (True, None, CascadeMode.SPECULATIVE),
        "demo": (True, None, None),
    }


async def test_hedging_off_globally_keeps_a_tenants_own_yes() -> None:
    text = edited("tenants:\n", f"tenants:\n{TENANTS.lstrip(chr(10))}", DEFAULT)
    text = edited("  enabled: true\n\ntenants", "  enabled: false\n\ntenants", text)

    found = await policies(text)

    assert {name: hedging for name, (hedging, _, _) in found.items()} == {
        "quiet": False,
        "eager": True,
        "demo": False,
    }
