"""What only the PostgreSQL ledger promises (the behaviour every backend shares is in
contract/): its schema is created by a versioned migration that replicas starting together
run once, a schema from a newer fareway is refused, and the database going away (a closed
port, a proxy cut, connections terminated by the server) is LedgerUnavailable naming the
server but never its password, from which the ledger comes back by itself."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from fareway.budgets.ledger import Limit, RateLimit, TenantSeed
from fareway.budgets.postgres import PostgresLedger, address
from fareway.budgets.postgres_schema import SCHEMA_VERSION
from fareway.budgets.registry import PostgresLedgerConfig
from fareway.budgets.windows import Window
from fareway.core.clock import ManualClock
from fareway.core.errors import LedgerUnavailable
from tests.budgets.contract.support import START, TENANT, TTL_S, figures
from tests.budgets.postgres_db import proxy_to
from tests.budgets.redis_process import free_port
from tests.budgets.test_ledger_outages import EVERY_METHOD, assert_public_message_is_clean

SEEDS = {TENANT: TenantSeed((Limit(Window.DAY, 1_000),), latency_target_ms=700)}
REPLICAS = 5
TABLES = {"schema_version", "tenants", "spend", "holds", "settled", "minutes"}


@pytest.fixture
async def db(postgres_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A connection of the test's own, to look inside the database."""
    connection = await asyncpg.connect(postgres_url)
    try:
        yield connection
    finally:
        await connection.close()


def open_ledger(url: str, schema: str) -> PostgresLedger:
    return PostgresLedger(url, ManualClock(START), hold_ttl_s=TTL_S, schema=schema)


@pytest.mark.postgres
async def test_first_use_creates_the_schema_at_the_current_version(
    postgres_url: str, postgres_schema: str, db: asyncpg.Connection
) -> None:
    ledger = open_ledger(postgres_url, postgres_schema)
    try:
        await ledger.ping()
    finally:
        await ledger.aclose()

    tables = await db.fetch(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
        postgres_schema,
    )
    versions = await db.fetch(f"SELECT version FROM {postgres_schema}.schema_version")
    assert {row["table_name"] for row in tables} == TABLES
    assert [row["version"] for row in versions] == [SCHEMA_VERSION] == [1]


@pytest.mark.postgres
async def test_replicas_starting_together_migrate_once(
    postgres_url: str, postgres_schema: str, db: asyncpg.Connection
) -> None:
    ledgers = [open_ledger(postgres_url, postgres_schema) for _ in range(REPLICAS)]
    try:
        # Every replica's first call at once, each seeding: one migrates, the others wait on
        # the advisory lock and find the schema current.
        await asyncio.gather(*(ledger.seed(SEEDS) for ledger in ledgers))
        await ledgers[0].hold(TENANT, "h1", 400)
        for ledger in ledgers:
            assert await figures(ledger) == {"day": (0, 400, 600)}
    finally:
        for ledger in ledgers:
            await ledger.aclose()

    versions = await db.fetch(f"SELECT version FROM {postgres_schema}.schema_version")
    assert [row["version"] for row in versions] == [1]


@pytest.mark.postgres
async def test_the_schema_survives_the_ledger(postgres_url: str, postgres_schema: str) -> None:
    first = open_ledger(postgres_url, postgres_schema)
    try:
        await first.seed(SEEDS)
        await first.settle(TENANT, "h1", 250)
        await first.hold(TENANT, "h2", 100)
    finally:
        await first.aclose()

    second = open_ledger(postgres_url, postgres_schema)
    try:
        await second.seed({TENANT: TenantSeed((Limit(Window.DAY, 5),))})  # known: kept
        assert await figures(second) == {"day": (250, 100, 650)}
    finally:
        await second.aclose()


@pytest.mark.postgres
async def test_a_schema_from_a_newer_fareway_is_refused(
    postgres_url: str, postgres_schema: str, db: asyncpg.Connection
) -> None:
    ledger = open_ledger(postgres_url, postgres_schema)
    try:
        await ledger.ping()
    finally:
        await ledger.aclose()
    await db.execute(f"INSERT INTO {postgres_schema}.schema_version (version) VALUES (2)")

    newer = open_ledger(postgres_url, postgres_schema)
    try:
        with pytest.raises(LedgerUnavailable) as caught:
            await newer.state(TENANT)
    finally:
        await newer.aclose()

    assert f"schema {postgres_schema} has ledger schema version 2" in caught.value.detail
    assert "reads up to 1" in caught.value.detail


@pytest.mark.parametrize("method", EVERY_METHOD)
async def test_postgres_on_a_closed_port_is_unavailable_naming_the_address(method: str) -> None:
    port = free_port()
    ledger = PostgresLedger(f"postgresql://fareway:secret@127.0.0.1:{port}/ledger", ManualClock())
    try:
        with pytest.raises(LedgerUnavailable) as caught:
            await EVERY_METHOD[method](ledger)
    finally:
        await ledger.aclose()

    assert_public_message_is_clean(caught.value)
    assert caught.value.detail.startswith(f"postgres at 127.0.0.1:{port}/ledger: ")
    assert "secret" not in caught.value.detail


@pytest.mark.postgres
async def test_a_database_that_goes_away_is_unavailable_then_comes_back(
    postgres_url: str, postgres_schema: str
) -> None:
    proxy, proxied = await proxy_to(postgres_url)
    ledger = open_ledger(proxied, postgres_schema)
    try:
        await ledger.seed(SEEDS)
        await ledger.hold(TENANT, "h1", 300)

        await proxy.stop()  # every connection cut, and nothing listens

        with pytest.raises(LedgerUnavailable) as caught:
            await ledger.hold(TENANT, "h2", 100)
        assert_public_message_is_clean(caught.value)
        assert caught.value.detail.startswith(f"postgres at 127.0.0.1:{proxy.port}/")
        with pytest.raises(LedgerUnavailable):
            await ledger.ping()

        await proxy.start()

        await ledger.ping()
        assert await figures(ledger) == {"day": (0, 300, 700)}  # durable: nothing forgotten
        await ledger.settle(TENANT, "h1", 200)
        assert await figures(ledger) == {"day": (200, 0, 800)}
    finally:
        await ledger.aclose()
        await proxy.stop()


@pytest.mark.postgres
async def test_hold_and_settle_are_one_round_trip_each(
    postgres_url: str, postgres_schema: str
) -> None:
    proxy, proxied = await proxy_to(postgres_url)
    ledger = PostgresLedger(proxied, ManualClock(START), schema=postgres_schema, pool_size=1)
    try:
        await ledger.configure(TENANT, [Limit(Window.DAY, 10**9)], latency_target_ms=500)
        for i in range(2):  # the connection prepares each statement on its first use only
            await ledger.hold(TENANT, f"warm-{i}", 10, admit=RateLimit())
            await ledger.settle(TENANT, f"warm-{i}", 10, 1, met_target=True)
        before = proxy.requests

        await ledger.hold(TENANT, "h1", 10, admit=RateLimit(requests_per_minute=100))
        held = proxy.requests - before
        await ledger.settle(TENANT, "h1", 10, 1, met_target=True)
        settled = proxy.requests - before - held
    finally:
        await ledger.aclose()
        await proxy.stop()

    assert (held, settled) == (1, 1)


@pytest.mark.postgres
async def test_connections_terminated_by_the_server_are_replaced_without_failing_a_call(
    postgres_url: str, postgres_schema: str, db: asyncpg.Connection
) -> None:
    ledger = open_ledger(postgres_url, postgres_schema)
    try:
        await ledger.seed(SEEDS)
        await asyncio.gather(*(ledger.hold(TENANT, f"h{i}", 10) for i in range(5)))

        # What a failover or an administrator does: every connection of this ledger (the only
        # ones whose last statement named its schema) is terminated.
        terminated = await db.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE pid <> pg_backend_pid() AND query LIKE $1",
            f"%{postgres_schema}.%",
        )
        assert terminated >= 1

        await ledger.settle(TENANT, "h0", 10)  # retried once on a fresh connection
        assert await figures(ledger) == {"day": (10, 40, 950)}
    finally:
        await ledger.aclose()


async def test_the_environment_variable_replaces_the_configured_url() -> None:
    port = free_port()
    config = PostgresLedgerConfig.model_validate(
        {"type": "postgres", "url": "postgresql://127.0.0.1:5432/configured", "schema": "ledger"}
    )
    ledger = config.build(
        ManualClock(), {"FAREWAY_POSTGRES_URL": f"postgresql://127.0.0.1:{port}/env"}
    )
    try:
        with pytest.raises(LedgerUnavailable) as caught:
            await ledger.ping()
    finally:
        await ledger.aclose()

    assert caught.value.detail.startswith(f"postgres at 127.0.0.1:{port}/env: ")


def test_the_address_names_no_password() -> None:
    assert (
        address("postgresql://fareway:hunter2@db.internal:6432/money") == "db.internal:6432/money"
    )
    assert address("postgres://db.internal/money") == "db.internal:5432/money"
    assert address("postgresql://fareway@127.0.0.1") == "127.0.0.1:5432/fareway"


def test_a_schema_name_that_is_not_a_plain_identifier_is_refused() -> None:
    with pytest.raises(ValueError, match="identifier"):
        PostgresLedger("postgresql://127.0.0.1/x", ManualClock(), schema="a; DROP TABLE b")
