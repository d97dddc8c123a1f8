"""The PostgreSQL ledger: several replicas share one durable ledger in a database operators
already back up, replicate and trust with money.

Choose it over Redis when the ledger must not forget: a settled charge is a committed
transaction (fsynced by the server under its default `synchronous_commit = on`), so neither a
replica's `kill -9` nor the database server's own crash loses it. Choose it over SQLite when
replicas run on more than one host.

One round trip per call: every call is one statement sent in autocommit mode, so it runs as
one transaction: `hold`, `settle`, `checkpoint` and `state` call server-side functions
(`postgres_schema.py` holds them and their locking), `configure` and `seed` are single
INSERT statements. asyncpg prepares each statement once per connection and caches it, so a
call costs one network round trip: Bind, Execute, Sync, and the reply.

Time comes from the injected clock, never from the server: Python passes `now` in epoch
milliseconds and the window keys it computed (`fareway.budgets.windows`), as the Redis ledger
does, so tests move time with a ManualClock and every replica agrees on the windows.

Crash recovery is by time-to-live, as with Redis: replicas on other hosts cannot tell whether
one another's processes still run, so a killed replica's holds stay until their time-to-live
runs out, and are then settled at their last checkpoint by the next hold, state or checkpoint
of the tenant. Settled charges are never touched: they are committed rows.

Schema: created or migrated on first use (`postgres_schema.migrate`), in the configured
schema of the database, under an advisory lock so that replicas starting together migrate
once. The database must exist and the user must be allowed to create the schema (or it must
exist already, owned by the user).

Faults: a server that cannot be reached, refuses the connection, is shutting down, or
terminates it (pg_terminate_backend, a restart, a failover), and any error from the server,
becomes LedgerUnavailable whose detail names host:port/database (never a password). A
connection that died under a call is not reused: the pool replaces its connections and the
call is retried on another (up to once per pooled connection, all of which may have died
together, and once more on a new one), which is what a restarted or failed-over server
needs; a server that is down refuses the new connection and fails the call as fast. A
retried call is safe: settle and checkpoint are idempotent by hold id and a hold of the same
id replaces its amount (the one thing a retry can repeat is the admission count of a hold
whose first reply was lost, refusing that tenant's requests a request sooner, never serving
one unbilled). A timeout is not retried: a slow server would only be waited for twice.
Connecting waits at most
CONNECT_TIMEOUT_S and a call COMMAND_TIMEOUT_S, so a dead server fails calls within seconds
instead of hanging them. The pool is opened lazily and reopened on the next call after it
could not be, so the ledger comes back by itself once the server does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg

from fareway.budgets.accounting import (
    SETTLED_RETENTION,
    budget_state,
    check_admit,
    epoch_ms,
    limit_states,
    window_keys,
)
from fareway.budgets.codec import decode_limits, encode_limits
from fareway.budgets.ledger import (
    BudgetState,
    Limit,
    RateLimit,
    TenantSeed,
    budget_exceeded,
    minute_key,
)
from fareway.budgets.postgres_schema import (
    ADVISORY_LOCK,
    CHECKPOINT,
    CONFIGURE,
    CURRENT_VERSION,
    HOLD,
    PREPARE,
    RATE_LIMITED,
    REFUSED,
    SEED,
    SETTLE,
    STATE,
    migration_steps,
    sql,
)
from fareway.core.clock import Clock
from fareway.core.errors import LedgerUnavailable

T = TypeVar("T")

log = logging.getLogger(__name__)

# A dead or unreachable server fails a call within seconds rather than hanging it.
CONNECT_TIMEOUT_S = 2.0
COMMAND_TIMEOUT_S = 5.0
# Closing waits this long for calls in flight, then drops the connections.
CLOSE_TIMEOUT_S = 5.0

# A pooled connection that died under the call (the server restarted, failed over, or
# terminated it): the call is retried on another connection, or a new one. (Not a refused
# connection or a timeout: a server that is down or out of reach would fail the retry alike.)
STALE_CONNECTION = (
    ConnectionResetError,
    BrokenPipeError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
    asyncpg.exceptions.PostgresConnectionError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    # The connection read the server's termination notice while idle; its next call finds
    # the protocol in a state it cannot leave.
    asyncpg.exceptions.InternalClientError,
)
# Everything the driver or the server can raise (OSError covers refused connections and
# timeouts); none of it may reach the caller as anything but LedgerUnavailable.
UNAVAILABLE = (
    *STALE_CONNECTION,
    OSError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.PostgresError,
)

Row = Mapping[str, Any]


class PostgresLedger:
    """A Ledger in a PostgreSQL schema, shared by every replica pointed at the same database
    and schema. Owns its connection pool: `aclose` closes it."""

    def __init__(
        self,
        url: str,
        clock: Clock,
        hold_ttl_s: float = 900.0,
        *,
        schema: str = "fareway",
        pool_size: int = 10,
    ) -> None:
        self._url = url
        self._address = address(url)
        self._clock = clock
        self._ttl_ms = round(hold_ttl_s * 1000)
        self._schema = schema
        self._pool_size = pool_size
        self._sql = {
            name: sql(template, schema)
            for name, template in (
                ("configure", CONFIGURE),
                ("seed", SEED),
                ("hold", HOLD),
                ("settle", SETTLE),
                ("checkpoint", CHECKPOINT),
                ("state", STATE),
            )
        }
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()

    async def configure(
        self,
        tenant: str,
        limits: Sequence[Limit],
        latency_target_ms: int | None = None,
        *,
        only_if_new: bool = False,
    ) -> None:
        args = (tenant, encode_limits(limits), latency_target_ms, only_if_new)
        await self._call(lambda pool: pool.execute(self._sql["configure"], *args))

    async def seed(self, seeds: Mapping[str, TenantSeed]) -> None:
        # One statement: a server starting next to another sees all of the seeds or none. The
        # database keeps what it was given, so applying them once is enough.
        tenants = sorted(seeds)
        args = (
            tenants,
            [encode_limits(seeds[t].limits) for t in tenants],
            [seeds[t].latency_target_ms for t in tenants],
        )
        await self._call(lambda pool: pool.execute(self._sql["seed"], *args))

    async def state(self, tenant: str) -> BudgetState:
        now = self._clock.now()
        keys = window_keys(now)
        args = (tenant, epoch_ms(now), list(keys.values()), minute_key(now))
        row = await self._call(lambda pool: pool.fetchrow(self._sql["state"], *args))
        return _budget_state(tenant, now, row)

    async def hold(
        self, tenant: str, hold_id: str, amount_micros: int, *, admit: RateLimit | None = None
    ) -> BudgetState:
        now = self._clock.now()
        keys = window_keys(now)
        rate = admit or RateLimit()
        args = (
            tenant,
            hold_id,
            amount_micros,
            epoch_ms(now),
            self._ttl_ms,
            list(keys.values()),
            [window.value for window in keys],
            minute_key(now),
            admit is not None,
            _limit_arg(rate.requests_per_minute),
            _limit_arg(rate.tokens_per_minute),
        )
        row = await self._call(lambda pool: pool.fetchrow(self._sql["hold"], *args))
        code = row["code"]
        if code == RATE_LIMITED:
            assert admit is not None, "hold counts requests only when asked to admit"
            # The function applied the same rule to these counts: this raises.
            check_admit(tenant, admit, row["minute_requests"], row["minute_tokens"], now)
        state = _budget_state(tenant, now, row)
        if code == REFUSED:
            raise budget_exceeded(tenant, state.limits[row["refused"]], amount_micros)
        return state

    async def settle(
        self,
        tenant: str,
        hold_id: str,
        actual_micros: int,
        tokens: int = 0,
        *,
        met_target: bool | None = None,
    ) -> None:
        now = self._clock.now()
        now_ms = epoch_ms(now)
        args = (
            tenant,
            hold_id,
            actual_micros,
            tokens,
            met_target,
            now_ms,
            list(window_keys(now).values()),
            minute_key(now),
            now_ms - round(SETTLED_RETENTION.total_seconds() * 1000),
        )
        await self._call(lambda pool: pool.execute(self._sql["settle"], *args))

    async def checkpoint(self, tenant: str, hold_id: str, used_micros: int, tokens: int) -> None:
        now = self._clock.now()
        args = (
            tenant,
            hold_id,
            used_micros,
            tokens,
            epoch_ms(now),
            self._ttl_ms,
            list(window_keys(now).values()),
            minute_key(now),
        )
        await self._call(lambda pool: pool.execute(self._sql["checkpoint"], *args))

    async def ping(self) -> None:
        """Open the pool (and migrate) if needed, then one `SELECT 1`; LedgerUnavailable when
        the server does not answer."""
        await self._call(lambda pool: pool.execute("SELECT 1"))

    async def aclose(self) -> None:
        """Close the pool: calls in flight get CLOSE_TIMEOUT_S to finish. Idempotent."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            await asyncio.wait_for(pool.close(), CLOSE_TIMEOUT_S)
        except UNAVAILABLE:
            pool.terminate()

    # --- connections ----------------------------------------------------------------------

    async def _call(self, call: Callable[[asyncpg.Pool], Awaitable[T]]) -> T:
        """Run `call` on the pool. A connection found dead is replaced and the call retried,
        up to once per pooled connection (all may have died together) and once more on a new
        one; the first other failure is final."""
        pool = await self._ready_pool()
        with self._reachable():
            for _ in range(self._pool_size):
                try:
                    return await call(pool)
                except STALE_CONNECTION:
                    # Replace every pooled connection as it comes back, rather than fail once
                    # per connection.
                    await pool.expire_connections()
            return await call(pool)

    async def _ready_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._opening:  # concurrent first calls open one pool
                if self._pool is None:
                    with self._reachable():
                        self._pool = await self._open_pool()
        return self._pool

    async def _open_pool(self) -> asyncpg.Pool:
        pool = await asyncpg.create_pool(
            self._url,
            # Connections are opened on demand and kept while used (idle ones close after
            # asyncpg's five minutes). A floor would have asyncpg reconnect in the background,
            # logging a traceback per attempt, while the database is down: LedgerHealth's
            # ping already watches for its return.
            min_size=0,
            max_size=self._pool_size,
            timeout=CONNECT_TIMEOUT_S,
            command_timeout=COMMAND_TIMEOUT_S,
            server_settings={"application_name": "fareway"},
            # The pool's default reset (RESET ALL, UNLISTEN, ...) is a second round trip on
            # every call; the ledger changes no session state (autocommit statements, no SET,
            # no LISTEN, advisory locks only per transaction), so there is nothing to reset.
            reset=_nothing_to_reset,
        )
        try:
            async with pool.acquire() as connection:
                await migrate(connection, self._schema)
        except BaseException:
            pool.terminate()
            raise
        return pool

    @contextmanager
    def _reachable(self) -> Iterator[None]:
        """Turn the driver's and the server's errors into LedgerUnavailable naming the
        server (never its password)."""
        try:
            yield
        except UNAVAILABLE as error:
            raise LedgerUnavailable(f"postgres at {self._address}: {_describe(error)}") from error


async def migrate(connection: asyncpg.Connection, schema: str) -> int:
    """Create or migrate `schema` to SCHEMA_VERSION in one transaction, under an advisory
    lock (see `postgres_schema`); return the version it found."""
    async with connection.transaction():
        await connection.execute(sql(ADVISORY_LOCK, schema))
        await connection.execute(sql(PREPARE, schema))
        applied: int = await connection.fetchval(sql(CURRENT_VERSION, schema))
        steps = migration_steps(schema, applied)
        for step in steps:
            await connection.execute(step)
    if steps:
        log.info("postgres ledger schema %s migrated from version %d", schema, applied)
    return applied


def address(url: str) -> str:
    """Where `url` connects, for logs and errors: host:port/database; never a password."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        port = parts.port or 5432
    except ValueError:
        return "an unparseable url"
    database = parts.path.lstrip("/") or parts.username or "postgres"
    return f"{host}:{port}/{database}"


def _budget_state(tenant: str, now: datetime, row: Row) -> BudgetState:
    """A BudgetState from a function's budget columns (`budget` in postgres_schema.py)."""
    raw = row["limits_json"]
    limits = decode_limits(raw) if raw is not None else ()
    spent_by_key = dict(zip(window_keys(now).values(), row["spent"], strict=True))
    states = limit_states(limits, spent_by_key, row["reserved"], now)
    return budget_state(tenant, states, row["target_ms"], row["met_count"], row["total_count"])


async def _nothing_to_reset(connection: asyncpg.Connection) -> None:
    """A pooled connection goes back as it is (asyncpg still rolls back a transaction left
    open, which the ledger never does)."""


def _describe(error: BaseException) -> str:
    """One line for the log: the error's class and message (some have no message)."""
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _limit_arg(limit: int | None) -> int:
    """A per-minute limit as the hold function reads it: -1 for none."""
    return -1 if limit is None else limit
