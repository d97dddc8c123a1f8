"""Fixtures of the ledger tests that need a PostgreSQL server (see postgres_db.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.budgets.postgres_db import fresh_schema, server_url


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The URL of a PostgreSQL server that answered; checked once per session."""
    return server_url()


@pytest.fixture
async def postgres_schema(postgres_url: str) -> AsyncIterator[str]:
    """A schema of this test's own, dropped afterwards."""
    async with fresh_schema(postgres_url) as schema:
        yield schema
