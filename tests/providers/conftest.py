"""The fake and the provider under test, for whichever `upstream` a test module supplies: the
contract suite runs each one, and each protocol's own file picks its one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from fareway.providers.base import Provider
from tests.fakes.http_server import LoopbackServer
from tests.providers.upstreams import Upstream


@pytest.fixture
async def fake(upstream: Upstream) -> AsyncIterator[LoopbackServer[Any]]:
    async with upstream.fake_cls() as server:
        yield server


@pytest.fixture
async def provider(upstream: Upstream, fake: LoopbackServer[Any]) -> AsyncIterator[Provider]:
    prov = upstream.provider(fake.base_url)
    yield prov
    await prov.aclose()
