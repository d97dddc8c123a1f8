"""Callers that hang up early still get settled: nothing stays reserved until the TTL."""

from __future__ import annotations

import asyncio
from contextlib import aclosing
from pathlib import Path

import pytest

from fareway.client import AsyncClient, Done, TextDelta, Window
from tests.e2e.servers import INSTANT, Fleet, Sim, eventually, limit, write_config

pytestmark = pytest.mark.slow
CALLS = 50


async def hang_up(client: AsyncClient, at: type[Done] | type[TextDelta]) -> None:
    """Stream one answer and leave (the client cancels the call) when `at` arrives."""
    async with aclosing(client.generate("Name a colour.", max_tokens=20)) as events:
        async for event in events:
            if isinstance(event, at):
                return


@pytest.mark.parametrize(
    ("at", "sim"),
    [(Done, INSTANT), (TextDelta, Sim(tokens_per_second=40))],
    ids=["at-done", "mid-stream"],
)
async def test_hanging_up_releases_every_hold(
    fleet: Fleet, tmp_path: Path, at: type[Done] | type[TextDelta], sim: Sim
) -> None:
    ledger = {"type": "sqlite", "path": str(tmp_path / "ledger.db")}
    config = write_config(tmp_path / "fareway.yaml", ledger, {Window.TOTAL: 10**9}, sim)
    [server] = await fleet.start(config)
    async with server.client() as client:
        await asyncio.gather(*(hang_up(client, at) for _ in range(CALLS)))
        budget = await eventually(
            client.get_budget,
            lambda b: limit(b, Window.TOTAL).reserved_micros == 0,
            within_s=5,
            what="every hold released",
        )
    assert limit(budget, Window.TOTAL).spent_micros > 0, "what was streamed is billed"
