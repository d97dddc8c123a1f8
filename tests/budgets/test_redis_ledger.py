"""What only the Redis ledger promises: the key layout its module docstring documents (one
cluster slot per tenant, every key but the durable ones expiring), and ownership of a client
it was handed. (The behaviour every backend shares is in contract/.)"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from redis.asyncio import Redis
from redis.crc import key_slot

from fareway.budgets.accounting import epoch_ms
from fareway.budgets.ledger import Limit, RateLimit
from fareway.budgets.redis import RedisLedger
from fareway.budgets.windows import Window
from fareway.core.clock import ManualClock
from tests.budgets.contract.support import DAY_END, MONTH_END, START, TENANT, TTL_S, figures

pytestmark = pytest.mark.redis


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


async def test_keys_follow_the_documented_layout(client: Redis, redis_prefix: str) -> None:
    ledger = RedisLedger(client, ManualClock(START), hold_ttl_s=TTL_S, prefix=redis_prefix)
    await ledger.configure(TENANT, [Limit(Window.DAY, 1_000)])
    await ledger.hold(TENANT, "h1", 500, admit=RateLimit())
    await ledger.hold(TENANT, "h2", 100)
    await ledger.checkpoint(TENANT, "h2", 40, 4)
    await ledger.settle(TENANT, "h1", 120, tokens=7, met_target=True)

    base = f"{redis_prefix}:{{{TENANT}}}"
    lifetimes: dict[str, timedelta | None] = {  # None: never expires
        "tenant": None,
        "holds": timedelta(seconds=TTL_S, days=2),
        "usage": timedelta(seconds=TTL_S, days=2),
        "spend:day:2026-01-15": DAY_END - START + timedelta(days=2),
        "spend:month:2026-01": MONTH_END - START + timedelta(days=2),
        "spend:total": None,
        "settled:h1": timedelta(days=3),
        "minute:2026-01-15T15:00": timedelta(minutes=2),
    }
    keys = {f"{base}:{suffix}": lifetime for suffix, lifetime in lifetimes.items()}

    assert sorted(await client.keys(f"{redis_prefix}:*")) == sorted(keys)
    assert len({key_slot(key.encode()) for key in keys}) == 1  # one Redis Cluster slot
    for key, lifetime in keys.items():
        ttl_ms = await client.pttl(key)
        if lifetime is None:
            assert ttl_ms == -1, key
        else:  # relative to the injected clock, so exact but for the test's own run time
            assert ttl_ms == pytest.approx(lifetime.total_seconds() * 1000, abs=5_000), key
    assert await client.hgetall(f"{base}:holds") == {"h2": f"100:{epoch_ms(START) + 60_000}"}
    assert await client.hgetall(f"{base}:usage") == {"h2": "40:4"}
    assert await client.hgetall(f"{base}:minute:2026-01-15T15:00") == {
        "requests": "1",
        "tokens": "7",
    }


async def test_a_client_handed_in_stays_open(client: Redis, redis_prefix: str) -> None:
    ledger = RedisLedger(client, ManualClock(START), prefix=redis_prefix)
    await ledger.settle(TENANT, "h1", 5)

    await ledger.aclose()

    assert await client.ping()


async def test_prefixes_keep_ledgers_apart(redis_url: str, redis_prefix: str) -> None:
    clock = ManualClock(START)
    first = RedisLedger(redis_url, clock, prefix=f"{redis_prefix}:a")
    second = RedisLedger(redis_url, clock, prefix=f"{redis_prefix}:b")
    try:
        await first.configure(TENANT, [Limit(Window.DAY, 1_000)])
        await second.configure(TENANT, [Limit(Window.DAY, 1_000)])
        await first.settle(TENANT, "h1", 400)

        assert await figures(second) == {"day": (0, 0, 1_000)}
    finally:
        await first.aclose()
        await second.aclose()
