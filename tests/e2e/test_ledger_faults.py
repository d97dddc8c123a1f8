"""Real `fareway serve` processes on a Redis ledger that the test itself starts, restarts
empty, stops and starts again (findings 2 and 3):

- Redis restarted empty mid-run: the configured caps still refuse what they refuse; the tenant
  is never served uncapped, not even for the first request after the restart.
- Redis stopped: calls get UNAVAILABLE with a message that names no class and no address, the
  health check says NOT_SERVING; Redis started again on the same port: service and health
  come back by themselves.

Every wait is bounded. The Redis is the test's own (`tests/budgets/redis_process.py`), never
a shared one: skipped when /usr/bin/redis-server is missing, unless FAREWAY_REQUIRE_REDIS=1.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fareway.client import ResourceExhausted, Unavailable, Window
from tests.budgets.redis_process import RedisProcess, redis_process
from tests.e2e.servers import (
    INSTANT,
    Fleet,
    Server,
    eventually,
    generate_to_done,
    limit,
    request_cost_micros,
    write_config,
)

pytestmark = [pytest.mark.slow, pytest.mark.redis]

PROMPT = "Name a river."
MAX_TOKENS = 4
AFFORDED = 3  # requests the cap allows
BIG_MAX_TOKENS = 400  # one request of this costs more than the whole cap
WITHIN_S = 20


@pytest.fixture
async def own_redis() -> AsyncIterator[RedisProcess]:
    async with redis_process() as server:
        yield server


def config_for(tmp_path: Path, redis: RedisProcess) -> Path:
    cap = AFFORDED * request_cost_micros(PROMPT, MAX_TOKENS)
    assert request_cost_micros(PROMPT, BIG_MAX_TOKENS) > cap
    return write_config(
        tmp_path / "redis.yaml",
        ledger={"type": "redis", "url": redis.url},
        caps_micros={Window.TOTAL: cap},
        sim=INSTANT,
    )


async def health(server: Server) -> set[int]:
    """The health status of the server and of each of its services."""
    names = ("", "fareway.v1.RouterService", "fareway.v1.BudgetService")
    async with grpc.aio.insecure_channel(server.target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        replies = [
            await stub.Check(health_pb2.HealthCheckRequest(service=name), timeout=5)
            for name in names
        ]
    return {reply.status for reply in replies}


async def test_redis_restarted_empty_never_serves_the_tenant_uncapped(
    fleet: Fleet, tmp_path: Path, own_redis: RedisProcess
) -> None:
    [server] = await fleet.start(config_for(tmp_path, own_redis))
    async with server.client() as client:
        for _ in range(AFFORDED):
            await generate_to_done(client, PROMPT, MAX_TOKENS)
        with pytest.raises(ResourceExhausted):
            await generate_to_done(client, PROMPT, MAX_TOKENS)

        await own_redis.restart()  # empty: spend, holds and the tenant's caps are gone

        # The very first request after the restart: the cap is written back before it is held.
        with pytest.raises(ResourceExhausted):
            await generate_to_done(client, PROMPT, BIG_MAX_TOKENS)
        budget = await client.get_budget()
        assert limit(budget, Window.TOTAL).cap_micros == AFFORDED * request_cost_micros(
            PROMPT, MAX_TOKENS
        )
        # What was spent was lost with the data (a Redis without persistence): within the cap,
        # the tenant is served again.
        await generate_to_done(client, PROMPT, MAX_TOKENS)
    assert "had lost tenant 'e2e'" in server.log()


async def test_redis_stopped_is_unavailable_and_service_resumes_by_itself(
    fleet: Fleet, tmp_path: Path, own_redis: RedisProcess
) -> None:
    [server] = await fleet.start(config_for(tmp_path, own_redis))
    async with server.client() as client:
        await generate_to_done(client, PROMPT, MAX_TOKENS)

        await own_redis.stop()

        with pytest.raises(Unavailable) as caught:
            await generate_to_done(client, PROMPT, MAX_TOKENS)
        message = caught.value.message
        assert message == "the budget ledger is unavailable; retry shortly"
        for leak in ("redis", "127.0.0.1", "<class", str(own_redis.port)):
            assert leak not in message.lower()
        await eventually(
            lambda: health(server),
            lambda seen: seen == {health_pb2.HealthCheckResponse.NOT_SERVING},
            WITHIN_S,
            "health NOT_SERVING while the ledger is down",
        )

        await own_redis.start()  # the same port, empty

        await eventually(
            lambda: health(server),
            lambda seen: seen == {health_pb2.HealthCheckResponse.SERVING},
            WITHIN_S,
            "health SERVING once the ledger answers",
        )
        await generate_to_done(client, PROMPT, MAX_TOKENS)

    log = server.log()
    assert log.count("budget ledger unavailable") == 1, log
    assert "budget ledger reachable again" in log
    assert "Traceback" not in log
