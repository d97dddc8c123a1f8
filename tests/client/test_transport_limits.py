"""RESOURCE_EXHAUSTED from gRPC's own size limits is not a budget refusal: end to end, a body
larger than the server's receive limit raises TransportLimitExceeded, while a spent budget
still raises ResourceExhausted."""

from __future__ import annotations

import pytest

from fareway.client import AsyncClient, ResourceExhausted, TransportLimitExceeded
from tests.server.harness import TENANT_KEY, Harness, HarnessFactory, make_config

# Above gRPC's receive limit on the server (server.max_message_bytes, 4 MiB by default, or
# server.max_request_bytes plus 1 MiB), so gRPC refuses it before any fareway code runs.
OVERSIZED = "word " * (2 * 1024 * 1024)  # 10 MiB


def target(harness: Harness) -> str:
    return f"127.0.0.1:{harness.running.port}"


async def test_a_message_over_the_transport_limit_is_not_resource_exhausted(
    harness: Harness,
) -> None:
    async with AsyncClient(target(harness), api_key=TENANT_KEY, timeout_s=30) as client:
        with pytest.raises(TransportLimitExceeded) as caught:
            await client.route(OVERSIZED)

    assert not isinstance(caught.value, ResourceExhausted)
    state = await harness.ledger.state("acme")
    assert state.limits[0].reserved_micros == 0


async def test_a_spent_budget_is_still_resource_exhausted(serve: HarnessFactory) -> None:
    harness = await serve(make_config(day_cap_usd=0.0001))
    async with AsyncClient(target(harness), api_key=TENANT_KEY, timeout_s=30) as client:
        with pytest.raises(ResourceExhausted) as caught:
            await client.complete("analyze this", max_tokens=1000)

    assert "tenant:acme" in caught.value.quota_violations
