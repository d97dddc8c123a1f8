"""Graceful shutdown: in-flight streams finish within the grace period and are settled."""

from __future__ import annotations

import asyncio
from typing import Any

import grpc

from fareway.core.clock import SystemClock
from fareway.v1 import router_pb2
from tests.fakes.anthropic_server import Answer, FakeAnthropic
from tests.server.harness import TENANT_KEY, make_config, metadata, user_request


async def test_stop_drains_streams_in_flight_and_settles_them(serve: Any) -> None:
    async with FakeAnthropic(default=Answer(chunks=("a",) * 20, chunk_delay_s=0.02)) as fake:
        harness = await serve(
            make_config(provider="upstream", base_url=fake.base_url), clock=SystemClock()
        )
        call = harness.router.Generate(
            user_request("classify this: x"), metadata=metadata(TENANT_KEY)
        )
        first = await call.read()
        assert first.WhichOneof("event") == "decision"

        stopping = asyncio.create_task(harness.running.stop(grace_s=10))
        events: list[router_pb2.GenerateEvent] = []
        while (event := await call.read()) is not grpc.aio.EOF:
            events.append(event)
        await stopping

    assert events[-1].WhichOneof("event") == "done", "the stream in flight was allowed to finish"
    state = await harness.ledger.state("acme")
    assert state.limits[0].reserved_micros == 0
    assert state.limits[0].spent_micros == events[-1].done.total.cost_micros
