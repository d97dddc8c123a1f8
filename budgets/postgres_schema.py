"""The PostgreSQL ledger's schema (`postgres.py` does the ledger's work in it): its tables, the
server-side functions that make each change one atomic round trip, and the versioned
migrations that create them.

Everything lives in one PostgreSQL schema (`fareway` unless configured otherwise), so several
deployments can share a database, and tests each get a schema of their own. Instants are epoch
milliseconds from the injected clock (never the server's `now()`), so every replica agrees on
the window a charge lands in and tests move time with a ManualClock. Amounts are bigint
micro-USD.

    schema_version (version PK, applied_at)   one row per migration applied
    tenants  (tenant PK, limits jsonb or NULL until configured, latency_target_ms,
              latency_met, latency_total)       its row is the tenant's lock (below)
    spend    (tenant, window_key, micros)       PK (tenant, window_key); keys from windows.py
    holds    (tenant, hold_id, amount, expires_at, used, tokens)
                                                PK (tenant, hold_id); expired rows are settled at
                                                `used`/`tokens` (the last checkpoint) by the next
                                                hold, state or checkpoint of the tenant
    settled  (tenant, hold_id, settled_at, micros, tokens, final)
                                                PK (tenant, hold_id); kept SETTLED_RETENTION;
                                                final false: settled at a checkpoint, figures kept
    minutes  (tenant PK, minute_key, requests, tokens)   the current minute only

Functions, one per ledger call (each runs as one transaction: the caller sends one statement
in autocommit mode): `hold`, `settle`, `checkpoint` and `state`, with helpers `lock_tenant`,
`budget`, `charge`, `count_minute` and `settle_expired`. `configure` and `seed` are single
statements (CONFIGURE, SEED below) and need no function.

Locking: every change that moves a tenant's money (`hold`, `settle`, settling expired holds)
first takes its `tenants` row with SELECT ... FOR UPDATE, creating the row if the tenant is
new. A tenant's holds and settles therefore run one at a time, as a Redis script would, and
"check every cap, then hold" cannot interleave with another replica's: each statement after
the lock sees everything committed before it (READ COMMITTED takes a new snapshot per
statement). Tenants never wait for each other. A checkpoint of a live hold updates only that
hold's row (its expiry moves later, its amount stays, so no concurrent check is affected);
only a checkpoint that finds its hold expired takes the tenant's lock to settle it. Locks are
always taken tenant row first, then that tenant's other rows, so no two calls can deadlock.

Migrations: `migrate` runs in one transaction under a transaction-level advisory lock keyed
by the schema's name, so replicas starting together migrate once and the others wait, then
find the schema current. Migration 1 creates everything. A schema from a newer fareway is
refused rather than misread. To change the schema, add migration 2 (never edit 1: databases
in the field have it applied) and bump SCHEMA_VERSION.
"""

from __future__ import annotations

import re

from fareway.core.errors import LedgerUnavailable

SCHEMA_VERSION = 1

# A plain lower-case identifier: it is written into the SQL unquoted (see `sql`).
SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

# Code 0 of `hold`: held; 1: the id was settled already, nothing held; REFUSED and RATE_LIMITED
# as in the Redis ledger.
HELD_ALREADY_SETTLED = 1
REFUSED = 2
RATE_LIMITED = 3

MIGRATION_1 = """
CREATE TABLE {schema}.tenants (
    tenant text PRIMARY KEY,
    limits jsonb,
    latency_target_ms integer NOT NULL DEFAULT 0,
    latency_met bigint NOT NULL DEFAULT 0,
    latency_total bigint NOT NULL DEFAULT 0
);

CREATE TABLE {schema}.spend (
    tenant text NOT NULL,
    window_key text NOT NULL,
    micros bigint NOT NULL,
    PRIMARY KEY (tenant, window_key)
);

CREATE TABLE {schema}.holds (
    tenant text NOT NULL,
    hold_id text NOT NULL,
    amount bigint NOT NULL,
    expires_at bigint NOT NULL,
    used bigint NOT NULL DEFAULT 0,
    tokens bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, hold_id)
);

CREATE TABLE {schema}.settled (
    tenant text NOT NULL,
    hold_id text NOT NULL,
    settled_at bigint NOT NULL,
    micros bigint NOT NULL DEFAULT 0,
    tokens bigint NOT NULL DEFAULT 0,
    final boolean NOT NULL DEFAULT true,
    PRIMARY KEY (tenant, hold_id)
);
CREATE INDEX settled_by_age ON {schema}.settled (tenant, settled_at);

CREATE TABLE {schema}.minutes (
    tenant text PRIMARY KEY,
    minute_key text NOT NULL,
    requests bigint NOT NULL,
    tokens bigint NOT NULL
);

-- Take the tenant's row lock, creating the row (unconfigured: limits NULL) for a new tenant.
CREATE FUNCTION {schema}.lock_tenant(p_tenant text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM {schema}.tenants WHERE tenant = p_tenant FOR UPDATE;
    IF NOT FOUND THEN
        -- Two first calls for a tenant: the second insert waits for the first and does nothing.
        INSERT INTO {schema}.tenants (tenant) VALUES (p_tenant) ON CONFLICT (tenant) DO NOTHING;
        PERFORM 1 FROM {schema}.tenants WHERE tenant = p_tenant FOR UPDATE;
    END IF;
END $$;

-- The tenant's budget in one statement (one snapshot): limits JSON or NULL, latency target,
-- met, total, the live holds' total but `p_except`'s (NULL: all of them), and the spend of
-- each window key of `p_windows`, in that order.
CREATE FUNCTION {schema}.budget(
    p_tenant text, p_now bigint, p_windows text[], p_except text,
    OUT limits_json text, OUT target_ms integer, OUT met_count bigint, OUT total_count bigint,
    OUT reserved bigint, OUT spent bigint[])
LANGUAGE sql AS $$
    SELECT t.limits::text,
           coalesce(t.latency_target_ms, 0),
           coalesce(t.latency_met, 0),
           coalesce(t.latency_total, 0),
           (SELECT coalesce(sum(CASE WHEN h.hold_id = p_except THEN 0 ELSE h.amount END), 0)
              FROM {schema}.holds h
             WHERE h.tenant = p_tenant AND h.expires_at > p_now)::bigint,
           ARRAY(SELECT coalesce(w.micros, 0)
                   FROM unnest(p_windows) WITH ORDINALITY AS k (window_key, n)
                   LEFT JOIN {schema}.spend w
                          ON w.tenant = p_tenant AND w.window_key = k.window_key
                  ORDER BY k.n)
      FROM (SELECT) AS one
      LEFT JOIN {schema}.tenants t ON t.tenant = p_tenant
$$;

-- Add to the tenant's minute counters, starting them afresh when the row belongs to an earlier
-- minute (every SET expression reads the old row).
CREATE FUNCTION {schema}.count_minute(
    p_tenant text, p_minute text, p_requests bigint, p_tokens bigint) RETURNS void
LANGUAGE sql AS $$
    INSERT INTO {schema}.minutes AS m (tenant, minute_key, requests, tokens)
    VALUES (p_tenant, p_minute, p_requests, p_tokens)
    ON CONFLICT (tenant) DO UPDATE SET
        requests = excluded.requests
            + CASE WHEN m.minute_key = excluded.minute_key THEN m.requests ELSE 0 END,
        tokens = excluded.tokens
            + CASE WHEN m.minute_key = excluded.minute_key THEN m.tokens ELSE 0 END,
        minute_key = excluded.minute_key
$$;

-- Add `p_micros` to every window key and `p_tokens` to this minute.
CREATE FUNCTION {schema}.charge(
    p_tenant text, p_micros bigint, p_tokens bigint, p_windows text[], p_minute text)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_micros <> 0 THEN
        INSERT INTO {schema}.spend AS w (tenant, window_key, micros)
        SELECT p_tenant, k.window_key, p_micros FROM unnest(p_windows) AS k (window_key)
        ON CONFLICT (tenant, window_key) DO UPDATE SET micros = w.micros + excluded.micros;
    END IF;
    IF p_tokens <> 0 THEN
        PERFORM {schema}.count_minute(p_tenant, p_minute, 0, p_tokens);
    END IF;
END $$;

-- Settle the tenant's expired holds at their last checkpoint: charge it, delete the hold, and
-- leave a non-final settled row so that a late settle only tops it up. Under the tenant lock.
CREATE FUNCTION {schema}.settle_expired(
    p_tenant text, p_now bigint, p_windows text[], p_minute text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_used bigint;
    v_tokens bigint;
BEGIN
    WITH gone AS (
        DELETE FROM {schema}.holds WHERE tenant = p_tenant AND expires_at <= p_now
        RETURNING hold_id, used, tokens
    ), marked AS (
        INSERT INTO {schema}.settled (tenant, hold_id, settled_at, micros, tokens, final)
        SELECT p_tenant, g.hold_id, p_now, g.used, g.tokens, false FROM gone g
        ON CONFLICT (tenant, hold_id) DO NOTHING
    )
    SELECT coalesce(sum(g.used), 0), coalesce(sum(g.tokens), 0) INTO v_used, v_tokens
      FROM gone g;
    PERFORM {schema}.charge(p_tenant, v_used, v_tokens, p_windows, p_minute);
END $$;

-- Ledger.hold. `p_names` are the window names of `p_windows`' keys, in the same order; p_rpm and
-- p_tpm are -1 for no limit. Codes: 0 held, 1 settled already (nothing held), 2 refused by
-- the cap of limit number `refused` (from 0; an admission counted stays counted), 3 refused
-- by the rate limit (nothing counted; `minute_requests` and `minute_tokens` say why). Codes
-- 0 and 1 return the budget, the hold included.
CREATE FUNCTION {schema}.hold(
    p_tenant text, p_hold_id text, p_amount bigint, p_now bigint, p_ttl_ms bigint,
    p_windows text[], p_names text[], p_minute text,
    p_admit boolean, p_rpm bigint, p_tpm bigint,
    OUT code integer, OUT limits_json text, OUT target_ms integer, OUT met_count bigint,
    OUT total_count bigint, OUT reserved bigint, OUT spent bigint[], OUT refused integer,
    OUT minute_requests bigint, OUT minute_tokens bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_limit jsonb;
    v_index bigint;
BEGIN
    PERFORM {schema}.lock_tenant(p_tenant);
    -- First: their tokens count towards this minute's admission.
    PERFORM {schema}.settle_expired(p_tenant, p_now, p_windows, p_minute);
    IF p_admit THEN
        SELECT m.requests, m.tokens INTO minute_requests, minute_tokens
          FROM {schema}.minutes m WHERE m.tenant = p_tenant AND m.minute_key = p_minute;
        minute_requests := coalesce(minute_requests, 0);
        minute_tokens := coalesce(minute_tokens, 0);
        IF (p_rpm >= 0 AND minute_requests >= p_rpm)
                OR (p_tpm >= 0 AND minute_tokens >= p_tpm) THEN
            code := 3;
            RETURN;
        END IF;
        PERFORM {schema}.count_minute(p_tenant, p_minute, 1, 0);
    END IF;
    SELECT b.limits_json, b.target_ms, b.met_count, b.total_count, b.reserved, b.spent
      INTO limits_json, target_ms, met_count, total_count, reserved, spent
      FROM {schema}.budget(p_tenant, p_now, p_windows, p_hold_id) b;
    IF EXISTS (SELECT 1 FROM {schema}.settled d
                WHERE d.tenant = p_tenant AND d.hold_id = p_hold_id) THEN
        -- A late hold must not reserve money nothing will release; a settled id has no live
        -- hold, so `reserved` is every live hold.
        code := 1;
        RETURN;
    END IF;
    IF limits_json IS NOT NULL THEN
        FOR v_limit, v_index IN
            SELECT e.value, e.n FROM jsonb_array_elements(limits_json::jsonb)
                   WITH ORDINALITY AS e (value, n)
        LOOP
            IF p_amount > greatest(0, (v_limit ->> 'cap_micros')::bigint
                    - spent[array_position(p_names, v_limit ->> 'window')] - reserved) THEN
                code := 2;
                refused := v_index - 1;
                RETURN;
            END IF;
        END LOOP;
    END IF;
    -- A re-hold (a fallback) keeps `used` and `tokens`: what the call used is still owed.
    INSERT INTO {schema}.holds AS h (tenant, hold_id, amount, expires_at)
    VALUES (p_tenant, p_hold_id, p_amount, p_now + p_ttl_ms)
    ON CONFLICT (tenant, hold_id)
        DO UPDATE SET amount = excluded.amount, expires_at = excluded.expires_at;
    reserved := reserved + p_amount;
    code := 0;
END $$;

-- Ledger.settle. p_met NULL: no latency to count.
CREATE FUNCTION {schema}.settle(
    p_tenant text, p_hold_id text, p_micros bigint, p_tokens bigint, p_met boolean,
    p_now bigint, p_windows text[], p_minute text, p_forget_before bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    v_final boolean;
    v_micros bigint;
    v_tokens bigint;
BEGIN
    PERFORM {schema}.lock_tenant(p_tenant);
    INSERT INTO {schema}.settled (tenant, hold_id, settled_at) VALUES (p_tenant, p_hold_id, p_now)
    ON CONFLICT (tenant, hold_id) DO NOTHING;
    IF NOT FOUND THEN
        SELECT d.final, d.micros, d.tokens INTO v_final, v_micros, v_tokens
          FROM {schema}.settled d WHERE d.tenant = p_tenant AND d.hold_id = p_hold_id;
        IF v_final THEN
            RETURN;  -- settled before: charge once, count the latency once
        END IF;
        -- Settled at its checkpoint when it expired: charge the rest, now for good.
        UPDATE {schema}.settled SET final = true
         WHERE tenant = p_tenant AND hold_id = p_hold_id;
        p_micros := greatest(0, p_micros - v_micros);
        p_tokens := greatest(0, p_tokens - v_tokens);
    END IF;
    DELETE FROM {schema}.holds WHERE tenant = p_tenant AND hold_id = p_hold_id;
    PERFORM {schema}.charge(p_tenant, p_micros, p_tokens, p_windows, p_minute);
    IF p_met IS NOT NULL THEN
        UPDATE {schema}.tenants
           SET latency_met = latency_met + p_met::integer, latency_total = latency_total + 1
         WHERE tenant = p_tenant;
    END IF;
    -- This tenant's only (it holds their lock): settles of other tenants never wait on it.
    DELETE FROM {schema}.settled WHERE tenant = p_tenant AND settled_at < p_forget_before;
END $$;

-- Ledger.checkpoint. A live hold: only its own row is touched (checkpoints come every second
-- from every stream; they do not queue on the tenant's lock). An expired one is settled at its
-- previous checkpoint instead, under the lock; a settled or unknown one: nothing.
CREATE FUNCTION {schema}.checkpoint(
    p_tenant text, p_hold_id text, p_used bigint, p_tokens bigint, p_now bigint,
    p_ttl_ms bigint, p_windows text[], p_minute text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE {schema}.holds SET used = p_used, tokens = p_tokens, expires_at = p_now + p_ttl_ms
     WHERE tenant = p_tenant AND hold_id = p_hold_id AND expires_at > p_now;
    IF NOT FOUND AND EXISTS (SELECT 1 FROM {schema}.holds
                              WHERE tenant = p_tenant AND hold_id = p_hold_id) THEN
        PERFORM {schema}.lock_tenant(p_tenant);
        PERFORM {schema}.settle_expired(p_tenant, p_now, p_windows, p_minute);
    END IF;
END $$;

-- Ledger.state: settle expired holds (only then taking the lock: readers do not queue), then
-- read the budget in one snapshot.
CREATE FUNCTION {schema}.state(
    p_tenant text, p_now bigint, p_windows text[], p_minute text,
    OUT limits_json text, OUT target_ms integer, OUT met_count bigint, OUT total_count bigint,
    OUT reserved bigint, OUT spent bigint[])
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM {schema}.holds
                WHERE tenant = p_tenant AND expires_at <= p_now) THEN
        PERFORM {schema}.lock_tenant(p_tenant);
        PERFORM {schema}.settle_expired(p_tenant, p_now, p_windows, p_minute);
    END IF;
    SELECT b.limits_json, b.target_ms, b.met_count, b.total_count, b.reserved, b.spent
      INTO limits_json, target_ms, met_count, total_count, reserved, spent
      FROM {schema}.budget(p_tenant, p_now, p_windows, NULL) b;
END $$;
"""

# The statements that bring a schema from version N - 1 to N, keyed by N.
MIGRATIONS: dict[int, str] = {1: MIGRATION_1}

# Replace the tenant's limits; the latency target unless $3 is NULL. With $4 (only_if_new),
# nothing for a tenant configured already: "configured" is limits not NULL, so a tenant known
# only by its traffic still takes its first configuration.
CONFIGURE = """
INSERT INTO {schema}.tenants AS t (tenant, limits, latency_target_ms)
VALUES ($1, $2::jsonb, coalesce($3::integer, 0))
ON CONFLICT (tenant) DO UPDATE SET
    limits = excluded.limits,
    latency_target_ms = coalesce($3::integer, t.latency_target_ms)
WHERE NOT $4::boolean OR t.limits IS NULL
"""

# `configure(only_if_new=True)` for many tenants in one statement: all of the seeds or none.
# Sorted, so that replicas seeding at once lock the tenants' rows in the same order.
SEED = """
INSERT INTO {schema}.tenants AS t (tenant, limits, latency_target_ms)
SELECT s.tenant, s.limits, s.target
  FROM unnest($1::text[], $2::jsonb[], $3::integer[]) AS s (tenant, limits, target)
 ORDER BY s.tenant
ON CONFLICT (tenant) DO UPDATE SET
    limits = excluded.limits, latency_target_ms = excluded.latency_target_ms
WHERE t.limits IS NULL
"""

HOLD = "SELECT * FROM {schema}.hold($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
SETTLE = "SELECT {schema}.settle($1, $2, $3, $4, $5, $6, $7, $8, $9)"
CHECKPOINT = "SELECT {schema}.checkpoint($1, $2, $3, $4, $5, $6, $7, $8)"
STATE = "SELECT * FROM {schema}.state($1, $2, $3, $4)"

# Run in one transaction, after the advisory lock: make sure the version table exists, then
# read the version applied.
PREPARE = """
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.schema_version (
    version integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);
"""
CURRENT_VERSION = "SELECT coalesce(max(version), 0) FROM {schema}.schema_version"
RECORD_VERSION = "INSERT INTO {schema}.schema_version (version) VALUES ({version})"
# Two int4 keys: fareway's own class (a constant) and the schema's name; transaction-scoped,
# so a replica that dies mid-migration releases it with its connection.
ADVISORY_LOCK = "SELECT pg_advisory_xact_lock(hashtext('fareway.ledger'), hashtext('{schema}'))"


def sql(template: str, schema: str) -> str:
    """`template` with its schema filled in. The name is checked against SCHEMA_NAME (the
    configuration checks it too), so writing it unquoted cannot inject anything."""
    if not SCHEMA_NAME.match(schema):
        raise ValueError(f"not a plain lower-case PostgreSQL identifier: {schema!r}")
    return template.replace("{schema}", schema)


def migration_steps(schema: str, applied: int) -> list[str]:
    """The statements that bring a schema at version `applied` to SCHEMA_VERSION, each
    followed by the row recording it. Raises LedgerUnavailable for a newer schema."""
    if applied > SCHEMA_VERSION:
        raise LedgerUnavailable(
            f"postgres schema {schema} has ledger schema version {applied}; this fareway"
            f" reads up to {SCHEMA_VERSION}: upgrade fareway or configure another schema"
        )
    steps: list[str] = []
    for version in range(applied + 1, SCHEMA_VERSION + 1):
        steps.append(sql(MIGRATIONS[version], schema))
        steps.append(sql(RECORD_VERSION, schema).replace("{version}", str(version)))
    return steps
