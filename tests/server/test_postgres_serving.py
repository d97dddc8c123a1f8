"""`fareway serve` processes on a PostgreSQL ledger (F18, F19), as an operator runs replicas,
each test on a schema of its own:

- Three replicas hammered together by far more requests than the cap affords serve exactly
  what it affords and refuse the rest with RESOURCE_EXHAUSTED (as tests/e2e/test_replicas.py
  does on Redis).
- A replica killed with SIGKILL mid-stream loses no settled charge; the text its streams had
  sent is billed at their last checkpoints once their holds' time-to-live runs out, and no
  hold outlives it (as tests/e2e/test_crash.py does on Redis).
- The database unreachable mid-run (the server reaches it through a TCP proxy of the test's
  own, which the test cuts): calls are refused with UNAVAILABLE before anything streams and the
  health check says NOT_SERVING; once the proxy is back, service and health return by
  themselves (as tests/e2e/test_ledger_faults.py does on Redis).

Every wait is bounded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, aclosing
from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2

from fareway.budgets.postgres import PostgresLedger
from fareway.budgets.windows import Window as LedgerWindow
from fareway.client import AsyncClient, StreamEvent, Unavailable, Window
from fareway.core.clock import SystemClock
from tests.budgets.postgres_db import fresh_schema, proxy_to, server_url
from tests.e2e.servers import (
    INSTANT,
    TENANT,
    Fleet,
    eventually,
    generate_to_done,
    limit,
    request_cost_micros,
    write_config,
)
from tests.e2e.test_crash import (
    CAP,
    CHECKPOINT_INTERVAL_S,
    HOLD_TTL_S,
    SLOW,
    assert_holds_expire_after_kill_9,
)
from tests.e2e.test_ledger_faults import health
from tests.e2e.test_replicas import (
    AFFORDABLE,
    MAX_TOKENS,
    PROMPT,
    REPLICAS,
    REQUESTS,
    hammer,
    window,
)

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

WITHIN_S = 30


@pytest.fixture
async def postgres() -> AsyncIterator[tuple[str, str]]:
    """A PostgreSQL server's URL and a schema of this test's own (dropped afterwards)."""
    url = server_url()
    async with fresh_schema(url) as schema:
        yield url, schema


@pytest.fixture
async def fleet(tmp_path: Path) -> AsyncIterator[Fleet]:
    """As tests/e2e's: servers killed when the test ends. FAREWAY_POSTGRES_URL (CI sets it for
    the in-process tests) is emptied: the written configuration names the test's server."""
    servers = Fleet(tmp_path, env={"FAREWAY_POSTGRES_URL": ""})
    try:
        yield servers
    finally:
        await servers.kill_all()


async def test_replicas_sharing_a_postgres_ledger_never_pass_the_cap(
    fleet: Fleet, tmp_path: Path, postgres: tuple[str, str]
) -> None:
    url, schema = postgres
    cost = request_cost_micros(PROMPT, MAX_TOKENS)
    cap = AFFORDABLE * cost + cost // 2
    config = write_config(
        tmp_path / "replicas.yaml",
        ledger={"type": "postgres", "url": url, "schema": schema},
        caps_micros={Window.DAY: cap, Window.TOTAL: cap},
        sim=INSTANT,
    )
    servers = await fleet.start(config, count=REPLICAS)

    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(s.client()) for s in servers]
        outcomes = await hammer(clients, REQUESTS)
    served = [o for o in outcomes if o is not None]

    assert {(s.estimated_micros, s.cost_micros, s.stop_reason) for s in served} == {
        (cost, cost, "max_tokens")
    }
    ledger = PostgresLedger(url, SystemClock(), schema=schema)
    try:
        state = await ledger.state(TENANT)
    finally:
        await ledger.aclose()
    total = window(state, LedgerWindow.TOTAL)
    by_replica = [sum(s.replica == r for s in served) for r in range(REPLICAS)]
    print(
        f"\npostgres: served {len(served)} (by replica: {by_replica}), refused"
        f" {len(outcomes) - len(served)}, spent {total.spent_micros} of a cap of {cap}"
    )
    for lim in state.limits:
        assert lim.spent_micros <= cap, f"{lim.limit.window} spend passed the cap"
        assert lim.reserved_micros == 0, "a hold outlived its call"
    assert total.spent_micros == len(served) * cost, "every answer charged, nothing else"
    assert len(served) == AFFORDABLE
    assert min(by_replica) > 0, "every replica served some"


async def test_postgres_ledger_after_kill_9_bills_the_streamed_text_once_holds_expire(
    fleet: Fleet, tmp_path: Path, postgres: tuple[str, str]
) -> None:
    url, schema = postgres
    config = write_config(
        tmp_path / "postgres.yaml",
        ledger={
            "type": "postgres",
            "url": url,
            "schema": schema,
            "hold_ttl_s": HOLD_TTL_S,
            "checkpoint_interval_s": CHECKPOINT_INTERVAL_S,
        },
        caps_micros={Window.TOTAL: CAP},
        sim=SLOW,
    )
    ledger = PostgresLedger(url, SystemClock(), schema=schema)
    await assert_holds_expire_after_kill_9(fleet, config, ledger, "postgres")


async def test_postgres_unreachable_is_unavailable_and_service_resumes_by_itself(
    fleet: Fleet, tmp_path: Path, postgres: tuple[str, str]
) -> None:
    url, schema = postgres
    proxy, proxied = await proxy_to(url)
    config = write_config(
        tmp_path / "postgres.yaml",
        ledger={"type": "postgres", "url": proxied, "schema": schema},
        caps_micros={Window.TOTAL: 100 * request_cost_micros(PROMPT, MAX_TOKENS)},
        sim=INSTANT,
    )
    try:
        [server] = await fleet.start(config)
        async with server.client() as client:
            await generate_to_done(client, PROMPT, MAX_TOKENS)
            spent = limit(await client.get_budget(), Window.TOTAL).spent_micros

            await proxy.stop()  # the database is gone: connections cut, nothing listens

            seen: list[StreamEvent] = []
            with pytest.raises(Unavailable) as caught:
                await read_stream(client, seen)
            assert seen == [], "nothing streams while the ledger cannot bill it"
            assert caught.value.message == "the budget ledger is unavailable; retry shortly"
            await eventually(
                lambda: health(server),
                lambda statuses: statuses == {health_pb2.HealthCheckResponse.NOT_SERVING},
                WITHIN_S,
                "health NOT_SERVING while the ledger is down",
            )

            await proxy.start()

            await eventually(
                lambda: health(server),
                lambda statuses: statuses == {health_pb2.HealthCheckResponse.SERVING},
                WITHIN_S,
                "health SERVING once the ledger answers",
            )
            await generate_to_done(client, PROMPT, MAX_TOKENS)
            after = limit(await client.get_budget(), Window.TOTAL).spent_micros
    finally:
        await proxy.stop()

    # Durable: the spend before the outage is still there, and the refused call cost nothing.
    assert after == 2 * spent
    log = server.log()
    assert log.count("budget ledger unavailable") == 1, log
    assert "budget ledger reachable again" in log
    assert "Traceback" not in log


async def read_stream(client: AsyncClient, seen: list[StreamEvent]) -> None:
    """Stream one answer, appending each event to `seen` as it arrives."""
    async with aclosing(client.generate(PROMPT, max_tokens=MAX_TOKENS)) as events:
        async for event in events:
            seen.append(event)
