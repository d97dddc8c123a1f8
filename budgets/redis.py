"""The Redis ledger: several replicas share one ledger, each change one atomic Lua script.

(Named `redis.py` like its siblings `memory.py` and `sqlite.py`; it does not shadow the redis
package, because every import in fareway is absolute and `budgets/` is never on sys.path.)

Time comes from the injected clock, never from Redis TIME: Python passes `now` in epoch
milliseconds and the window keys it computed (`fareway.budgets.windows`), so tests move time
with a ManualClock and every replica agrees on which window a charge lands in. Key lifetimes
are set with relative PEXPIRE computed from that same clock.

Keys, for prefix P and tenant T. `{T}` is a Redis Cluster hash tag: all of a tenant's keys
share one slot, which is what lets one script touch them all (and only them: no script
touches two tenants).

    P:{T}:tenant               hash: `limits` (JSON, budgets/codec.py; present once
                               configured, "[]" for a tenant configured without caps),
                               `latency_target_ms`, `latency_met`, `latency_total`. Never
                               expires.
    P:{T}:holds                hash: hold id -> "<amount micros>:<expires at, epoch ms>". An
                               expired entry is settled at its usage (below) by the next HOLD
                               or STATE of the tenant, or its own CHECKPOINT.
    P:{T}:usage                hash: hold id -> "<used micros>:<tokens>", the hold's last
                               checkpoint. Kept apart from `holds` so that the hold format stays
                               the one every fareway version reads: replicas can be upgraded
                               one at a time (an older one releases an expired hold without
                               charging its usage, as it always did). `holds` and `usage`
                               expire SPEND_GRACE after the last hold or checkpoint written to
                               them would have, so a crashed replica's checkpoints wait that
                               long for someone to charge them.
    P:{T}:spend:<window key>   integer micro-USD, e.g. `P:{acme}:spend:day:2026-01-15`,
                               `...:spend:month:2026-01`, `...:spend:total`. Day and month keys
                               expire SPEND_GRACE after their window ends; total never does.
    P:{T}:settled:<hold id>    "1": this hold was settled; "p:<used>:<tokens>": it expired and
                               was settled at its checkpoint, which a late SETTLE tops up.
                               Expires after SETTLED_RETENTION. Scripts derive these names from
                               the tenant's prefix (same slot) rather than declaring them.
    P:{T}:minute:<minute>      hash: `requests`, `tokens` for one UTC minute, e.g.
                               `P:{acme}:minute:2026-01-15T12:00`. Expires a minute after it ends.

Scripts: `redis_scripts.py` holds them and says what each does; each is registered once
(EVALSHA, reloaded by redis-py when a restarted server lost it).

State lost: a Redis without persistence that restarts, or a FLUSHALL, empties the ledger. The
configured budgets (`seed`) travel with every HOLD and STATE of a seeded tenant, and the
script writes them back, in the same atomic step, when it finds the tenant's `limits` missing,
so a tenant with configured caps is never served uncapped, not even for one request (the log
says when this happened). Everything else is gone with the data: spend so far, holds, rate
counters, and overrides made with SetBudget (the tenant is back at its configured budget).
Persistence (below) is what keeps them.

Faults: connection and timeout errors from redis-py become LedgerUnavailable (its detail names
the server, never a password). A client made from a URL connects within CONNECT_TIMEOUT_S,
waits SOCKET_TIMEOUT_S for a reply and retries a command once on a fresh connection (what a
restarted server needs); a dead server fails a call within seconds instead of hanging it.

A request costs two script calls: HOLD (admission, hold and the budget it reports) and
SETTLE (charge, release and latency count). HOLD and STATE read every hold of the tenant, so
they cost O(requests in flight for that tenant). Amounts are Lua numbers (doubles) inside
the scripts: exact up to 2**53 micro-USD, about nine billion dollars.

Durability is the server's: with `appendonly yes` and `appendfsync everysec` a settled charge
survives a Redis restart (losing at most about a second on an OS crash, like the SQLite
ledger); a Redis that keeps nothing on disk forgets every figure when it restarts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from fareway.budgets.accounting import (
    SETTLED_RETENTION,
    budget_state,
    check_admit,
    epoch_ms,
    limit_state,
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
from fareway.budgets.redis_scripts import (
    CHECKPOINT,
    CONFIGURE,
    HOLD,
    RATE_LIMITED,
    REFUSED,
    SETTLE,
    STATE,
)
from fareway.budgets.windows import Window, window_bounds
from fareway.core.clock import Clock
from fareway.core.errors import LedgerUnavailable

log = logging.getLogger(__name__)

# Spend keys outlive their window so that replicas whose clocks disagree around midnight still
# add to, and read, the same figures. The holds hash outlives its last hold by as much, so
# that a crashed replica's checkpoints are still there to be charged.
SPEND_GRACE = timedelta(days=2)
# Minute counters outlive their minute by this much, for the same reason.
KEY_GRACE = timedelta(minutes=1)
# A client made from a URL: a burst of requests waits (up to the timeout) for one of this many
# connections instead of failing, as redis-py's default pool does once it has 100 in use.
MAX_CONNECTIONS = 50
CONNECTION_WAIT_S = 20.0
# A dead or unreachable server fails a call within seconds rather than hanging it.
CONNECT_TIMEOUT_S = 2.0
SOCKET_TIMEOUT_S = 5.0
# ARGV[9] to [12]: the arguments of a script's own (CONTEXT in redis_scripts.py).
OWN_ARGS = 4


@dataclass(frozen=True)
class TenantKeys:
    """The names of one tenant's keys; see the module docstring."""

    prefix: str
    tenant: str

    @property
    def base(self) -> str:
        return f"{self.prefix}:{{{self.tenant}}}"

    @property
    def tenant_hash(self) -> str:
        return f"{self.base}:tenant"

    @property
    def holds(self) -> str:
        return f"{self.base}:holds"

    @property
    def usage(self) -> str:
        return f"{self.base}:usage"

    def spend(self, window_key: str) -> str:
        return f"{self.base}:spend:{window_key}"

    def settled(self, hold_id: str) -> str:
        return f"{self.base}:settled:{hold_id}"

    def minute(self, now: datetime) -> str:
        return f"{self.base}:{minute_key(now)}"


class RedisLedger:
    """A Ledger in Redis, shared by every replica pointed at the same server and prefix.

    Give it a URL and it owns (and `aclose` closes) the client; give it a client and the
    caller keeps ownership (and its timeouts). The client may or may not decode responses.
    """

    def __init__(
        self,
        redis: str | Redis,
        clock: Clock,
        hold_ttl_s: float = 900.0,
        prefix: str = "fareway",
    ) -> None:
        self._owns_client = isinstance(redis, str)
        self._redis = _client(redis) if isinstance(redis, str) else redis
        self._address = _address(self._redis)
        self._clock = clock
        self._hold_ttl_ms = round(hold_ttl_s * 1000)
        self._prefix = prefix
        # Tenant -> (limits JSON, latency target): written back whenever the store lost them.
        self._seeds: dict[str, tuple[str, int]] = {}
        self._configure = self._redis.register_script(CONFIGURE)
        self._hold = self._redis.register_script(HOLD)
        self._settle = self._redis.register_script(SETTLE)
        self._checkpoint = self._redis.register_script(CHECKPOINT)
        self._state = self._redis.register_script(STATE)

    async def configure(
        self,
        tenant: str,
        limits: Sequence[Limit],
        latency_target_ms: int | None = None,
        *,
        only_if_new: bool = False,
    ) -> None:
        target = "" if latency_target_ms is None else str(latency_target_ms)
        with self._reachable():
            await self._configure(
                keys=[self._keys(tenant).tenant_hash],
                args=[int(only_if_new), encode_limits(limits), target],
            )

    async def seed(self, seeds: Mapping[str, TenantSeed]) -> None:
        self._seeds = {
            tenant: (encode_limits(seed.limits), seed.latency_target_ms)
            for tenant, seed in seeds.items()
        }
        for tenant, seed in seeds.items():
            await self.configure(tenant, seed.limits, seed.latency_target_ms, only_if_new=True)

    async def state(self, tenant: str) -> BudgetState:
        now = self._clock.now()
        keys, args = self._call(tenant, now)
        with self._reachable():
            reseeded, *budget = await self._state(keys=keys, args=args)
        self._note_reseeded(tenant, reseeded)
        return _budget_state(tenant, now, budget)

    async def hold(
        self, tenant: str, hold_id: str, amount_micros: int, *, admit: RateLimit | None = None
    ) -> BudgetState:
        now = self._clock.now()
        rate: tuple[str | int, ...] = ()
        if admit is not None:
            rate = (_limit_arg(admit.requests_per_minute), _limit_arg(admit.tokens_per_minute))
        keys, args = self._call(tenant, now, hold_id, amount_micros, *rate)
        with self._reachable():
            code, reseeded, *rest = await self._hold(keys=keys, args=args)
        self._note_reseeded(tenant, reseeded)
        if int(code) == RATE_LIMITED:
            assert admit is not None, "HOLD counts requests only when asked to admit"
            requests, tokens = rest
            # The script applied the same rule to these counts: this raises.
            check_admit(tenant, admit, int(requests), int(tokens), now)
        if int(code) == REFUSED:
            index, spent, reserved, raw = rest
            limit = decode_limits(raw)[int(index)]
            refused = limit_state(limit, int(spent), int(reserved), now)
            raise budget_exceeded(tenant, refused, amount_micros)
        return _budget_state(tenant, now, rest)

    async def settle(
        self,
        tenant: str,
        hold_id: str,
        actual_micros: int,
        tokens: int = 0,
        *,
        met_target: bool | None = None,
    ) -> None:
        met = "" if met_target is None else int(met_target)
        keys, args = self._call(tenant, self._clock.now(), hold_id, actual_micros, tokens, met)
        with self._reachable():
            await self._settle(keys=keys, args=args)

    async def checkpoint(self, tenant: str, hold_id: str, used_micros: int, tokens: int) -> None:
        keys, args = self._call(tenant, self._clock.now(), hold_id, used_micros, tokens)
        with self._reachable():
            await self._checkpoint(keys=keys, args=args)

    async def ping(self) -> None:
        """One PING; LedgerUnavailable when the server does not answer."""
        with self._reachable():
            await self._redis.ping()

    async def aclose(self) -> None:
        """Close the client if this ledger made it."""
        if self._owns_client:
            await self._redis.aclose()

    def _keys(self, tenant: str) -> TenantKeys:
        return TenantKeys(self._prefix, tenant)

    def _call(
        self, tenant: str, now: datetime, *own: str | int
    ) -> tuple[list[str], list[str | int]]:
        """KEYS and ARGV for a script that starts with CONTEXT; `own` are ARGV[9] to [12]."""
        keys = self._keys(tenant)
        windows = window_keys(now)
        limits, target = self._seeds.get(tenant, ("", 0))
        spend_args: list[str | int] = []
        for window, end in zip(windows, _window_ends(windows, now), strict=True):
            spend_args += [window.value, self._spend_ttl_ms(end, now)]
        padded = [*own, *([""] * (OWN_ARGS - len(own)))]
        return (
            [
                keys.tenant_hash,
                keys.holds,
                keys.usage,
                keys.minute(now),
                *(keys.spend(k) for k in windows.values()),
            ],
            [
                epoch_ms(now),
                keys.settled(""),
                _ms(SETTLED_RETENTION),
                self._minute_ttl_ms(now),
                self._hold_ttl_ms,
                self._hold_ttl_ms + _ms(SPEND_GRACE),
                limits,
                target,
                *padded,
                *spend_args,
            ],
        )

    def _note_reseeded(self, tenant: str, reseeded: Any) -> None:
        if int(reseeded):
            log.warning(
                "the redis ledger at %s had lost tenant %r's budget (restarted empty or"
                " flushed?); its configured budget was written back",
                self._address,
                tenant,
            )

    @contextmanager
    def _reachable(self) -> Iterator[None]:
        """Turn redis-py's connection and timeout errors into LedgerUnavailable."""
        try:
            yield
        except (RedisConnectionError, RedisTimeoutError) as error:
            raise LedgerUnavailable(f"redis at {self._address}: {error}") from error

    @staticmethod
    def _minute_ttl_ms(now: datetime) -> int:
        into_minute_ms = now.second * 1000 + now.microsecond // 1000
        return 60_000 - into_minute_ms + _ms(KEY_GRACE)

    @staticmethod
    def _spend_ttl_ms(window_end: datetime | None, now: datetime) -> int:
        """Until SPEND_GRACE after the window ends; 0 (never) for the total."""
        return 0 if window_end is None else _ms(window_end - now + SPEND_GRACE)


def _budget_state(tenant: str, now: datetime, reply: Sequence[Any]) -> BudgetState:
    """A BudgetState from a script's budget reply (`with_budget` in redis_scripts.py)."""
    raw, target, met, total, reserved, *spent = reply
    limits = decode_limits(raw) if raw else ()
    spent_by_key = dict(zip(window_keys(now).values(), (int(s) for s in spent), strict=True))
    states = limit_states(limits, spent_by_key, int(reserved), now)
    return budget_state(tenant, states, int(target), int(met), int(total))


def _client(url: str) -> Redis:
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=CONNECTION_WAIT_S,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=SOCKET_TIMEOUT_S,
        # Once, at once: a pooled connection to a server that restarted fails its first
        # command; the retry reconnects. A server that is down fails the retry as fast.
        retry=Retry(NoBackoff(), 1),
    )
    return Redis.from_pool(pool)  # the client owns the pool: aclose closes both


def _address(client: Redis) -> str:
    """Where `client` connects, for logs: host:port/db or the socket path; never a password."""
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix:{kwargs['path']}"
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


def _window_ends(windows: Mapping[Window, str], now: datetime) -> list[datetime | None]:
    """When each window ends, in the order of `windows`; None for the total."""
    return [window_bounds(window, now)[1] for window in windows]


def _ms(span: timedelta) -> int:
    return round(span.total_seconds() * 1000)


def _limit_arg(limit: int | None) -> int:
    """A per-minute limit as the HOLD script reads it: -1 for none."""
    return -1 if limit is None else limit
