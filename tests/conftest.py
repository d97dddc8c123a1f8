"""Fixtures every suite may use: a Redis server for the tests that need one.

Redis tests run against a real server at `FAREWAY_REDIS_URL` (default
redis://127.0.0.1:6379/0). When none answers they are skipped, unless
`FAREWAY_REQUIRE_REDIS=1` (CI sets it), which makes them fail instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The URL of a Redis server that answered PING; checked once per session."""
    url = os.environ.get("FAREWAY_REDIS_URL") or DEFAULT_REDIS_URL
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    except redis.RedisError:
        message = f"no Redis at {url}: set FAREWAY_REDIS_URL or start redis-server"
        if os.environ.get("FAREWAY_REQUIRE_REDIS") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    finally:
        client.close()
    return url


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix no other test uses; its keys are deleted afterwards (never FLUSHDB: the
    server may be shared)."""
    prefix = f"fareway-test-{uuid.uuid4().hex}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()
