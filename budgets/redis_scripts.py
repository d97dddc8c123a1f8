"""The Lua scripts of the Redis ledger (`redis.py`): each change to a tenant's budget is one of
them, run atomically by Redis. The key layout they work on is described in `redis.py`.

The scripts, each registered once by `RedisLedger` (EVALSHA, reloaded when Redis lost it).
All but CONFIGURE take the same keys (tenant hash, holds, usage, minute, one spend key per
window) and the same leading arguments (CONTEXT below):

    CONFIGURE  set `limits` (and the latency target unless empty); with only_if_new, do nothing
               when `limits` already exists.
    HOLD       settle expired holds at their checkpoints; when asked to admit, refuse (changing
               nothing else) when the minute's requests or tokens reached their limit, else
               count one request; nothing more if this hold was settled; for each configured
               limit check amount <= cap - spent - live holds other than this one; then set the
               hold (its usage, if any, is kept). A budget refusal leaves the hold as it was
               (an admission counted stays counted, as `Ledger.hold` says). Replies with the
               tenant's budget as STATE does, the hold included.
    SETTLE     charge the actual cost (less what an expiry already charged at the checkpoint)
               unless the marker says settled; release the hold; add tokens to the minute;
               count the latency attainment when asked to. A settled marker: nothing at all.
    CHECKPOINT record a live hold's usage and push its expiry a full time-to-live ahead; an
               expired one is settled at its previous checkpoint instead.
    STATE      settle expired holds, then read the tenant hash, live holds and spend.
"""

from __future__ import annotations

# Shared by every script but CONFIGURE. KEYS: tenant hash, holds, usage, minute, then one
# spend key per window. ARGV: 1 now ms, 2 settled-marker prefix, 3 marker ttl ms, 4 minute
# ttl ms, 5 hold ttl ms, 6 holds key ttl ms, 7 seed limits JSON ('' = not seeded), 8 seed
# latency target, 9-12 the script's own arguments, then (window name, spend key ttl ms,
# 0 = never) per spend key. Amounts travel as strings and are written back as such: Lua would
# print a large number in exponent form.
CONTEXT = """
local now = tonumber(ARGV[1])
local spend = {}
local spend_ttl = {}
for i = 5, #KEYS do
  local j = 13 + (i - 5) * 2
  spend[ARGV[j]] = KEYS[i]
  spend_ttl[KEYS[i]] = tonumber(ARGV[j + 1])
end

local function int(x) return string.format('%d', x) end

-- A hold is "<amount>:<expires at>", the format every fareway version reads.
local function hold_fields(value)
  local sep = string.find(value, ':', 1, true)
  return string.sub(value, 1, sep - 1), tonumber(string.sub(value, sep + 1))
end

local function hold_value(amount)
  return amount .. ':' .. int(now + tonumber(ARGV[5]))
end

-- "<used>:<tokens>" as the last checkpoint recorded it, or nothing.
local function split_usage(value)
  local sep = string.find(value, ':', 1, true)
  return string.sub(value, 1, sep - 1), string.sub(value, sep + 1)
end

local function usage_of(id)
  local value = redis.call('HGET', KEYS[3], id)
  if not value then return '0', '0' end
  return split_usage(value)
end

local function keep_alive()
  redis.call('PEXPIRE', KEYS[2], ARGV[6])
  redis.call('PEXPIRE', KEYS[3], ARGV[6])
end

local function charge(micros, tokens)
  if tonumber(micros) > 0 then
    for key, ttl in pairs(spend_ttl) do
      redis.call('INCRBY', key, micros)
      if ttl > 0 then redis.call('PEXPIRE', key, ttl) end
    end
  end
  redis.call('HINCRBY', KEYS[4], 'tokens', tokens)
  redis.call('PEXPIRE', KEYS[4], ARGV[4])
end

local function settle_at_checkpoint(id)
  local used, tokens = usage_of(id)
  redis.call('HDEL', KEYS[2], id)
  redis.call('HDEL', KEYS[3], id)
  redis.call('SET', ARGV[2] .. id, 'p:' .. used .. ':' .. tokens, 'NX', 'PX', ARGV[3])
  charge(used, tokens)
end

-- Settle every expired hold at its checkpoint; return the live holds' total but `except_id`.
local function settle_expired(except_id)
  local reserved = 0
  local flat = redis.call('HGETALL', KEYS[2])
  for i = 1, #flat, 2 do
    local amount, expires = hold_fields(flat[i + 1])
    if expires <= now then
      settle_at_checkpoint(flat[i])
    elseif flat[i] ~= except_id then
      reserved = reserved + tonumber(amount)
    end
  end
  return reserved
end

-- `reply` followed by the tenant's budget: limits JSON or nil, latency target, met, total,
-- the live holds' total `reserved`, then the spend of each spend key.
local function with_budget(reply, reserved)
  local t = redis.call('HMGET', KEYS[1], 'limits', 'latency_target_ms', 'latency_met',
    'latency_total')
  reply[#reply + 1] = t[1]
  reply[#reply + 1] = tonumber(t[2]) or 0
  reply[#reply + 1] = tonumber(t[3]) or 0
  reply[#reply + 1] = tonumber(t[4]) or 0
  reply[#reply + 1] = reserved
  for i = 5, #KEYS do reply[#reply + 1] = tonumber(redis.call('GET', KEYS[i]) or '0') end
  return reply
end

-- Write the configured budget back if the store lost it; 1 when it did.
local function ensure_seeded()
  if ARGV[7] ~= '' and redis.call('HEXISTS', KEYS[1], 'limits') == 0 then
    redis.call('HSET', KEYS[1], 'limits', ARGV[7], 'latency_target_ms', ARGV[8])
    return 1
  end
  return 0
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
    CONTEXT
    + """
-- ARGV[9] hold id, ARGV[10] amount, ARGV[11] requests limit and ARGV[12] tokens limit of the
-- admission (-1 = none; ARGV[11] '' = do not admit).  Returns {0, reseeded, budget...}
-- held, {1, reseeded, budget...} already settled (nothing held), {2 = REFUSED, reseeded,
-- limit index, spent, reserved, limits JSON} over a cap, {3 = RATE_LIMITED, reseeded,
-- requests before, tokens before} over a rate limit. A re-hold (a fallback) keeps the hold's usage:
-- what the call used is still owed.
local reseeded = ensure_seeded()
local reserved = settle_expired(ARGV[9])
if ARGV[11] ~= '' then
  local counts = redis.call('HMGET', KEYS[4], 'requests', 'tokens')
  local requests = tonumber(counts[1]) or 0
  local tokens = tonumber(counts[2]) or 0
  local rpm = tonumber(ARGV[11])
  local tpm = tonumber(ARGV[12])
  if (rpm >= 0 and requests >= rpm) or (tpm >= 0 and tokens >= tpm) then
    return {3, reseeded, requests, tokens}
  end
  redis.call('HINCRBY', KEYS[4], 'requests', 1)
  redis.call('PEXPIRE', KEYS[4], ARGV[4])
end
if redis.call('EXISTS', ARGV[2] .. ARGV[9]) == 1 then
  return with_budget({1, reseeded}, reserved)
end
local amount = tonumber(ARGV[10])
local raw = redis.call('HGET', KEYS[1], 'limits')
if raw then
  for i, limit in ipairs(cjson.decode(raw)) do
    local spent = tonumber(redis.call('GET', spend[limit.window]) or '0')
    if amount > math.max(0, limit.cap_micros - spent - reserved) then
      return {2, reseeded, i - 1, spent, reserved, raw}
    end
  end
end
redis.call('HSET', KEYS[2], ARGV[9], hold_value(ARGV[10]))
keep_alive()
return with_budget({0, reseeded}, reserved + amount)
"""
)

SETTLE = (
    CONTEXT
    + """
-- ARGV[9] hold id, ARGV[10] actual micros, ARGV[11] tokens, ARGV[12] latency target met ('1'
-- or '0'; '' = not counted).  Returns 1 charged, 0 settled before.
local marker = ARGV[2] .. ARGV[9]
local micros, tokens = ARGV[10], ARGV[11]
local previous = redis.call('GET', marker)
if previous then
  if string.sub(previous, 1, 2) ~= 'p:' then return 0 end
  local used, counted = split_usage(string.sub(previous, 3))
  micros = int(math.max(0, tonumber(micros) - tonumber(used)))
  tokens = int(math.max(0, tonumber(tokens) - tonumber(counted)))
end
redis.call('SET', marker, '1', 'PX', ARGV[3])
redis.call('HDEL', KEYS[2], ARGV[9])
redis.call('HDEL', KEYS[3], ARGV[9])
charge(micros, tokens)
if ARGV[12] ~= '' then
  redis.call('HINCRBY', KEYS[1], 'latency_total', 1)
  redis.call('HINCRBY', KEYS[1], 'latency_met', ARGV[12])
end
return 1
"""
)

CHECKPOINT = (
    CONTEXT
    + """
-- ARGV[9] hold id, ARGV[10] used micros, ARGV[11] tokens.  Returns 1 recorded, 0 no live hold.
-- Only this hold is looked at: checkpoints come every second from every stream.
local old = redis.call('HGET', KEYS[2], ARGV[9])
if not old then return 0 end
local amount, expires = hold_fields(old)
if expires <= now then
  settle_at_checkpoint(ARGV[9])
  return 0
end
redis.call('HSET', KEYS[2], ARGV[9], hold_value(amount))
redis.call('HSET', KEYS[3], ARGV[9], ARGV[10] .. ':' .. ARGV[11])
keep_alive()
return 1
"""
)

STATE = (
    CONTEXT
    + """
-- Returns {reseeded, budget...} (see with_budget).
local reseeded = ensure_seeded()
return with_budget({reseeded}, settle_expired(''))
"""
)

# HOLD's refusals; its other replies (0 held, 1 settled already) both carry the budget.
REFUSED = 2
RATE_LIMITED = 3
