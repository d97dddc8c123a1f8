"""Fixtures of the end-to-end tests: `fleet`, the servers of one test, always killed after it.
The helpers the tests call live in servers.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.e2e.servers import Fleet


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[Fleet]:
    """Starts `fareway serve` processes working in tmp_path; each is killed (SIGKILL) and
    reaped when the test ends, passed or not, so none outlives it."""
    servers = Fleet(tmp_path)
    try:
        yield servers
    finally:
        await servers.kill_all()
