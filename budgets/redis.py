"""The Redis ledger: several replicas share one ledger, each change one atomic Lua script.

(Named `redis.py` like its siblings `memory.py` and `sqlite.py`; it does not shadow the redis
package, because every import in fareway is absolute and `budgets/` is never on sys.path.)

Time comes from the injected clock, never from Redis TIME: Python passes `now` in epoch
milliseconds and the window keys it computed (`fareway.budgets.windows`), so tests move time
with a ManualClock and every replica agrees on which window a charge lands in. Key lifetimes
are set with relative PEXPIRE computed from that same clock.

Keys, for prefix P and tenant T. `{T}` is a Redis Cluster hash tag: all of a tenant's keys
share one slot, which is what lets one script touch them all.

    P:{T}:tenant               hash: `limits` (JSON, budgets/codec.py; present once
                               configured), `latency_target_ms`, `latency_met`, `latency_total`.
                               Never expires.
    P:{T}:holds                hash: hold id -> "<amount micros>:<expires at, epoch ms>". Expired
                               entries are ignored, and purged by the next hold. The key expires
                               a minute after the last hold written to it would have.
    P:{T}:spend:<window key>   integer micro-USD, e.g. `P:{acme}:spend:day:2026-01-15`,
                               `...:spend:month:2026-01`, `...:spend:total`. Day and month keys
                               expire SPEND_GRACE after their window ends; total never does.
    P:{T}:settled:<hold id>    "1": this hold was settled. Expires after SETTLED_RETENTION.
    P:{T}:minute:<minute>      hash: `requests`, `tokens` for one UTC minute, e.g.
                               `P:{acme}:minute:2026-01-15T12:00`. Expires a minute after it ends.

Scripts (each registered once; EVALSHA, reloaded by redis-py if the server lost it):

    CONFIGURE  set `limits` (and the latency target unless empty); with only_if_new, do nothing
               when `limits` already exists.
    HOLD       nothing if the hold was settled; purge expired holds; for each configured limit
               check amount <= cap - spent - live holds other than this one; then set the hold.
               Refusal returns the window's figures and changes nothing.
    SETTLE     SET the settled marker NX (already there: return, charging nothing); release the
               hold; INCRBY every window's spend key; add tokens to the minute.
    ADMIT      refuse when the minute's requests or tokens reached their limit; else count one.
    STATE      read the tenant hash, live holds and spend in one consistent step.

`record_latency` is two HINCRBYs in one MULTI. HOLD and STATE read every hold of the tenant,
so they cost O(requests in flight for that tenant). Amounts are Lua numbers (doubles) inside
the scripts: exact up to 2**53 micro-USD, about nine billion dollars.

Durability is the server's: with `appendonly yes` and `appendfsync everysec` a settled charge
survives a Redis restart (losing at most about a second on an OS crash, like the SQLite
ledger); a Redis that keeps nothing on disk forgets every figure when it restarts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from redis.asyncio import BlockingConnectionPool, Redis

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
from fareway.budgets.windows import Window, window_bounds
from fareway.core.clock import Clock

# Spend keys outlive their window so that replicas whose clocks disagree around midnight still
# add to, and read, the same figures.
SPEND_GRACE = timedelta(days=2)
# Minute counters and the holds hash outlive their last use by this much, for the same reason.
KEY_GRACE = timedelta(minutes=1)
# A client made from a URL: a burst of requests waits (up to the timeout) for one of this many
# connections instead of failing, as redis-py's default pool does once it has 100 in use.
MAX_CONNECTIONS = 50
CONNECTION_WAIT_S = 20.0

# Shared by HOLD and STATE: the total of live holds, skipping `except_id`; with `purge`, expired
# entries are deleted on the way.
LIVE_RESERVED = """
local function live_reserved(holds, now, except_id, purge)
  local reserved = 0
  local flat = redis.call('HGETALL', holds)
  for i = 1, #flat, 2 do
    local value = flat[i + 1]
    local sep = string.find(value, ':', 1, true)
    local amount = tonumber(string.sub(value, 1, sep - 1))
    if tonumber(string.sub(value, sep + 1)) <= now then
      if purge then redis.call('HDEL', holds, flat[i]) end
    elseif flat[i] ~= except_id then
      reserved = reserved + amount
    end
  end
  return reserved
end
"""

CONFIGURE = """
-- KEYS: tenant hash.  ARGV: only_if_new ('1'/'0'), limits JSON, latency target ('' = keep).
if ARGV[1] == '1' and redis.call('HEXISTS', KEYS[1], 'limits') == 1 then return 0 end
redis.call('HSET', KEYS[1], 'limits', ARGV[2])
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'latency_target_ms', ARGV[3]) end
return 1
"""

HOLD = (
    LIVE_RESERVED
    + """
-- KEYS: tenant hash, holds, settled marker, then one spend key per window.
-- ARGV: hold id, amount, now ms, holds key ttl ms, hold ttl ms, then the windows' names in the
--       order of their spend keys.
-- Returns {0} held, {1} already settled (nothing held), {2, limit index, spent, reserved,
-- limits JSON} refused.
if redis.call('EXISTS', KEYS[3]) == 1 then return {1} end
local amount = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local reserved = live_reserved(KEYS[2], now, ARGV[1], true)
local raw = redis.call('HGET', KEYS[1], 'limits')
if raw then
  local spend_key = {}
  for i = 6, #ARGV do spend_key[ARGV[i]] = KEYS[i - 2] end
  for i, limit in ipairs(cjson.decode(raw)) do
    local spent = tonumber(redis.call('GET', spend_key[limit.window]) or '0')
    if amount > math.max(0, limit.cap_micros - spent - reserved) then
      return {2, i - 1, spent, reserved, raw}
    end
  end
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. ':' .. (now + tonumber(ARGV[5])))
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return {0}
"""
)

SETTLE = """
-- KEYS: settled marker, holds, minute hash, then one spend key per window.
-- ARGV: hold id, actual micros, tokens, marker ttl ms, minute ttl ms, then one ttl ms per spend
--       key (0 = never expires).  Returns 1 when charged, 0 when settled before.
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[4]) then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
for i = 4, #KEYS do
  redis.call('INCRBY', KEYS[i], ARGV[2])
  local ttl = tonumber(ARGV[i + 2])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[i], ttl) end
end
redis.call('HINCRBY', KEYS[3], 'tokens', ARGV[3])
redis.call('PEXPIRE', KEYS[3], ARGV[5])
return 1
"""

ADMIT = """
-- KEYS: minute hash.  ARGV: requests limit, tokens limit (-1 = none), minute ttl ms.
-- Returns {admitted 1/0, requests before, tokens before}.
local counts = redis.call('HMGET', KEYS[1], 'requests', 'tokens')
local requests = tonumber(counts[1]) or 0
local tokens = tonumber(counts[2]) or 0
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
if (rpm >= 0 and requests >= rpm) or (tpm >= 0 and tokens >= tpm) then
  return {0, requests, tokens}
end
redis.call('HINCRBY', KEYS[1], 'requests', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, requests, tokens}
"""

STATE = (
    LIVE_RESERVED
    + """
-- KEYS: tenant hash, holds, then one spend key per window.  ARGV: now ms.
-- Returns {limits JSON or nil, latency target, met, total, reserved, spent per spend key...}.
local t = redis.call('HMGET', KEYS[1], 'limits', 'latency_target_ms', 'latency_met',
  'latency_total')
local reply = {t[1], tonumber(t[2]) or 0, tonumber(t[3]) or 0, tonumber(t[4]) or 0,
  live_reserved(KEYS[2], tonumber(ARGV[1]), '', false)}
for i = 3, #KEYS do reply[#reply + 1] = tonumber(redis.call('GET', KEYS[i]) or '0') end
return reply
"""
)

REFUSED = 2  # HOLD's reply code for a refusal


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

    def spend(self, window_key: str) -> str:
        return f"{self.base}:spend:{window_key}"

    def settled(self, hold_id: str) -> str:
        return f"{self.base}:settled:{hold_id}"

    def minute(self, now: datetime) -> str:
        return f"{self.base}:{minute_key(now)}"


class RedisLedger:
    """A Ledger in Redis, shared by every replica pointed at the same server and prefix.

    Give it a URL and it owns (and `aclose` closes) the client; give it a client and the
    caller keeps ownership. The client may or may not decode responses.
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
        self._clock = clock
        self._hold_ttl_ms = round(hold_ttl_s * 1000)
        self._prefix = prefix
        self._configure = self._redis.register_script(CONFIGURE)
        self._hold = self._redis.register_script(HOLD)
        self._settle = self._redis.register_script(SETTLE)
        self._admit = self._redis.register_script(ADMIT)
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
        await self._configure(
            keys=[self._keys(tenant).tenant_hash],
            args=[int(only_if_new), encode_limits(limits), target],
        )

    async def state(self, tenant: str) -> BudgetState:
        now = self._clock.now()
        keys = self._keys(tenant)
        spend_keys = list(window_keys(now).values())
        reply = await self._state(
            keys=[keys.tenant_hash, keys.holds, *(keys.spend(k) for k in spend_keys)],
            args=[epoch_ms(now)],
        )
        raw, target, met, total, reserved, *spent = reply
        limits = decode_limits(raw) if raw else ()
        spent_by_key = dict(zip(spend_keys, (int(s) for s in spent), strict=True))
        states = limit_states(limits, spent_by_key, int(reserved), now)
        return budget_state(tenant, states, int(target), int(met), int(total))

    async def hold(self, tenant: str, hold_id: str, amount_micros: int) -> None:
        now = self._clock.now()
        keys = self._keys(tenant)
        windows = window_keys(now)
        reply = await self._hold(
            keys=[
                keys.tenant_hash,
                keys.holds,
                keys.settled(hold_id),
                *(keys.spend(k) for k in windows.values()),
            ],
            args=[
                hold_id,
                amount_micros,
                epoch_ms(now),
                self._hold_ttl_ms + _ms(KEY_GRACE),
                self._hold_ttl_ms,
                *(w.value for w in windows),
            ],
        )
        if int(reply[0]) == REFUSED:
            _, index, spent, reserved, raw = reply
            limit = decode_limits(raw)[int(index)]
            refused = limit_state(limit, int(spent), int(reserved), now)
            raise budget_exceeded(tenant, refused, amount_micros)

    async def settle(self, tenant: str, hold_id: str, actual_micros: int, tokens: int = 0) -> None:
        now = self._clock.now()
        keys = self._keys(tenant)
        windows = window_keys(now)
        await self._settle(
            keys=[
                keys.settled(hold_id),
                keys.holds,
                keys.minute(now),
                *(keys.spend(k) for k in windows.values()),
            ],
            args=[
                hold_id,
                actual_micros,
                tokens,
                _ms(SETTLED_RETENTION),
                self._minute_ttl_ms(now),
                *(self._spend_ttl_ms(end, now) for end in _window_ends(windows, now)),
            ],
        )

    async def seed(self, seeds: Mapping[str, TenantSeed]) -> None:
        for tenant, seed in seeds.items():
            await self.configure(tenant, seed.limits, seed.latency_target_ms, only_if_new=True)

    async def checkpoint(self, tenant: str, hold_id: str, used_micros: int, tokens: int) -> None:
        """Not yet recorded: the hold keeps its amount and expiry."""

    async def ping(self) -> None:
        """Nothing checked yet."""

    async def admit(self, tenant: str, rate: RateLimit) -> None:
        now = self._clock.now()
        admitted, requests, tokens = await self._admit(
            keys=[self._keys(tenant).minute(now)],
            args=[
                _limit_arg(rate.requests_per_minute),
                _limit_arg(rate.tokens_per_minute),
                self._minute_ttl_ms(now),
            ],
        )
        if not int(admitted):
            # The script applied the same rule to these counts: this raises.
            check_admit(tenant, rate, int(requests), int(tokens), now)

    async def record_latency(self, tenant: str, met_target: bool) -> None:
        key = self._keys(tenant).tenant_hash
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(key, "latency_total", 1)
            pipe.hincrby(key, "latency_met", int(met_target))
            await pipe.execute()

    async def aclose(self) -> None:
        """Close the client if this ledger made it."""
        if self._owns_client:
            await self._redis.aclose()

    def _keys(self, tenant: str) -> TenantKeys:
        return TenantKeys(self._prefix, tenant)

    @staticmethod
    def _minute_ttl_ms(now: datetime) -> int:
        into_minute_ms = now.second * 1000 + now.microsecond // 1000
        return 60_000 - into_minute_ms + _ms(KEY_GRACE)

    @staticmethod
    def _spend_ttl_ms(window_end: datetime | None, now: datetime) -> int:
        """Until SPEND_GRACE after the window ends; 0 (never) for the total."""
        return 0 if window_end is None else _ms(window_end - now + SPEND_GRACE)


def _client(url: str) -> Redis:
    pool = BlockingConnectionPool.from_url(
        url, max_connections=MAX_CONNECTIONS, timeout=CONNECTION_WAIT_S
    )
    return Redis.from_pool(pool)  # the client owns the pool: aclose closes both


def _window_ends(windows: Mapping[Window, str], now: datetime) -> list[datetime | None]:
    """When each window ends, in the order of `windows`; None for the total."""
    return [window_bounds(window, now)[1] for window in windows]


def _ms(span: timedelta) -> int:
    return round(span.total_seconds() * 1000)


def _limit_arg(limit: int | None) -> int:
    """A per-minute limit as the ADMIT script reads it: -1 for none."""
    return -1 if limit is None else limit
