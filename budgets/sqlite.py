"""The SQLite ledger: the durable embedded default, one file that several processes on one
machine may share.

Durability: WAL journal with `synchronous=NORMAL`. Once COMMIT returns, the transaction is in
the WAL file (written to the operating system, not yet fsynced), so a settled charge survives
`kill -9` of the server process; only an operating-system crash or power loss can lose the
last few transactions, and even then the file stays consistent. `FULL` would fsync every
commit to close that last gap, at the price of a disk flush per hold and settle: not worth it
for a ledger whose worst loss is a few seconds of under-counted spend.

Atomicity across processes: every write is one `BEGIN IMMEDIATE` transaction, which takes the
file's write lock before its first read, so "check every cap, then hold" cannot interleave
with another process's; `busy_timeout` makes a second writer wait for the lock instead of
failing. A refused hold rolls back, holding nothing.

Blocking: sqlite3 calls block, so each ledger owns one worker thread (a single-thread
executor) that opens the one connection and runs every statement: the event loop never waits
on the disk, calls are serialised without a lock, and the connection never changes thread.

Crash recovery: every hold records the process that took it (`owner`, see `processes.py`) and,
through `checkpoint`, what its call has used so far (`used`, `tokens`). The first use of a
ledger, and `recover()`, settle the holds of processes on this host that no longer run at their
last checkpoint, so a server restarted after `kill -9` bills the text it had already streamed
and starts with the rest of its predecessor's reservations returned instead of waiting out the
hold time-to-live. Only a process that is certainly gone is settled for: another host's,
another PID namespace's, or an owner that cannot be checked keeps its holds until they expire
(and are settled at their checkpoint then), because settling a live replica's hold early
could let the tenant overspend. Settled charges are never touched: they are committed rows.

A hold settled at its checkpoint (expired or dead) leaves a `settled` row with `final = 0`
and the figures charged: a late `settle` of the same id (a call that stalled past its hold)
charges only the difference, so nothing is counted twice.

Faults: an `sqlite3.OperationalError` (a folder that does not exist, a file that cannot be
written, the write lock still held after `busy_timeout`, a full disk) becomes
LedgerUnavailable whose detail names the file. A connection that failed to open is retried
on the next call, so the ledger comes back by itself once the cause is fixed.

The file itself (WAL mode, the schema and its migrations, transactions) is `sqlite_file.py`.

"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from fareway.budgets.accounting import (
    SETTLED_RETENTION,
    budget_state,
    check_admit,
    check_hold,
    epoch_ms,
    limit_states,
    window_keys,
)
from fareway.budgets.codec import decode_limits, encode_limits
from fareway.budgets.ledger import BudgetState, Limit, RateLimit, TenantSeed, minute_key
from fareway.budgets.processes import ProcessId, is_gone, this_process
from fareway.budgets.sqlite_file import open_database, transaction
from fareway.core.clock import Clock
from fareway.core.errors import BudgetExceeded, LedgerUnavailable

T = TypeVar("T")

log = logging.getLogger(__name__)

# Adds to the tenant's minute counters, starting them afresh when the stored row belongs to an
# earlier minute. SQLite evaluates every SET expression against the old row.
ADD_TO_MINUTE = """
    INSERT INTO minutes (tenant, minute_key, requests, tokens) VALUES (?, ?, ?, ?)
    ON CONFLICT (tenant) DO UPDATE SET
        requests = excluded.requests
            + CASE WHEN minute_key = excluded.minute_key THEN requests ELSE 0 END,
        tokens = excluded.tokens
            + CASE WHEN minute_key = excluded.minute_key THEN tokens ELSE 0 END,
        minute_key = excluded.minute_key"""

ADD_TO_SPEND = (
    "INSERT INTO spend (tenant, window_key, micros) VALUES (?, ?, ?)"
    " ON CONFLICT (tenant, window_key) DO UPDATE SET micros = micros + excluded.micros"
)


class SqliteLedger:
    """A Ledger in one SQLite file; see the module docstring for durability and atomicity."""

    def __init__(
        self,
        path: str | Path,
        clock: Clock,
        hold_ttl_s: float = 900.0,
        *,
        busy_timeout_s: float = 30.0,
    ) -> None:
        self._path = str(path)
        self._clock = clock
        self._ttl_ms = round(hold_ttl_s * 1000)
        self._busy_timeout_ms = round(busy_timeout_s * 1000)
        # One thread owns the connection: it is opened there on first use and used nowhere else.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fareway-sqlite")
        self._db: sqlite3.Connection | None = None
        self._closed = False

    async def configure(
        self,
        tenant: str,
        limits: Sequence[Limit],
        latency_target_ms: int | None = None,
        *,
        only_if_new: bool = False,
    ) -> None:
        encoded = encode_limits(limits)

        def job(db: sqlite3.Connection) -> None:
            if only_if_new and self._limits(db, tenant) is not None:
                return
            db.execute(
                "INSERT INTO tenants (tenant, limits) VALUES (?, ?)"
                " ON CONFLICT (tenant) DO UPDATE SET limits = excluded.limits",
                (tenant, encoded),
            )
            if latency_target_ms is not None:
                db.execute(
                    "UPDATE tenants SET latency_target_ms = ? WHERE tenant = ?",
                    (latency_target_ms, tenant),
                )

        await self._write(job)

    async def seed(self, seeds: Mapping[str, TenantSeed]) -> None:
        # One transaction: a server starting next to another sees all of the seeds or none.
        # The file keeps what it was given, so applying them once is enough.
        encoded = {t: (encode_limits(s.limits), s.latency_target_ms) for t, s in seeds.items()}

        def job(db: sqlite3.Connection) -> None:
            for tenant, (limits, target) in encoded.items():
                if self._limits(db, tenant) is None:
                    db.execute(
                        "INSERT INTO tenants (tenant, limits, latency_target_ms) VALUES (?, ?, ?)"
                        " ON CONFLICT (tenant) DO UPDATE SET limits = excluded.limits,"
                        " latency_target_ms = excluded.latency_target_ms",
                        (tenant, limits, target),
                    )

        await self._write(job)

    async def state(self, tenant: str) -> BudgetState:
        now = self._clock.now()

        def job(db: sqlite3.Connection) -> BudgetState | None:
            if self._has_expired_holds(db, tenant, now):
                return None  # they must be settled first, which takes the write lock
            return self._budget_state(db, tenant, now)

        def settle_then_read(db: sqlite3.Connection) -> BudgetState:
            settle_expired_holds(db, now, tenant)
            return self._budget_state(db, tenant, now)

        # Readers never wait for writers, except the rare read that finds a hold to settle.
        state = await self._read(job)
        return state if state is not None else await self._write(settle_then_read)

    async def hold(
        self, tenant: str, hold_id: str, amount_micros: int, *, admit: RateLimit | None = None
    ) -> BudgetState:
        now = self._clock.now()
        now_ms = epoch_ms(now)

        def job(db: sqlite3.Connection) -> BudgetState | BudgetExceeded:
            settle_expired_holds(db, now)  # their tokens count towards this minute's admission
            if admit is not None:
                admit_request(db, tenant, admit, now)  # raising rolls back: nothing counted
            limits, target, met, total = self._tenant_row(db, tenant)
            spent = self._spent(db, tenant, now)
            others = self._reserved(db, tenant, now, exclude_hold=hold_id)
            if self._is_settled(db, tenant, hold_id):
                # A late hold must not reserve money that nothing will release (and a settled
                # id has no live hold: `others` is every live hold).
                return budget_state(
                    tenant, limit_states(limits, spent, others, now), target, met, total
                )
            try:
                check_hold(tenant, limit_states(limits, spent, others, now), amount_micros)
            except BudgetExceeded as refusal:
                # Returned, not raised, so that the transaction commits an admission counted
                # above (see Ledger.hold); the hold itself was not touched.
                return refusal
            # A re-hold (fallback) keeps `used` and `tokens`: what the call used is still owed.
            db.execute(
                "INSERT INTO holds (tenant, hold_id, amount, expires_at, owner)"
                " VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (tenant, hold_id) DO UPDATE SET amount = excluded.amount,"
                " expires_at = excluded.expires_at, owner = excluded.owner",
                (tenant, hold_id, amount_micros, now_ms + self._ttl_ms, str(this_process())),
            )
            states = limit_states(limits, spent, others + amount_micros, now)
            return budget_state(tenant, states, target, met, total)

        held = await self._write(job)
        if isinstance(held, BudgetExceeded):
            raise held
        return held

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

        def job(db: sqlite3.Connection) -> None:
            marked = db.execute(
                "INSERT OR IGNORE INTO settled (tenant, hold_id, settled_at) VALUES (?, ?, ?)",
                (tenant, hold_id, now_ms),
            )
            charged_micros, charged_tokens = 0, 0
            if marked.rowcount == 0:
                final, charged_micros, charged_tokens = db.execute(
                    "SELECT final, micros, tokens FROM settled WHERE tenant = ? AND hold_id = ?",
                    (tenant, hold_id),
                ).fetchone()
                if final:
                    return  # settled before: charge once, count the latency once
                # Settled at its checkpoint when it expired: charge the rest, now for good.
                db.execute(
                    "UPDATE settled SET final = 1 WHERE tenant = ? AND hold_id = ?",
                    (tenant, hold_id),
                )
            db.execute("DELETE FROM holds WHERE tenant = ? AND hold_id = ?", (tenant, hold_id))
            charge(
                db,
                tenant,
                max(0, actual_micros - charged_micros),
                max(0, tokens - charged_tokens),
                now,
            )
            if met_target is not None:
                db.execute(
                    "INSERT INTO tenants (tenant, latency_met, latency_total) VALUES (?, ?, 1)"
                    " ON CONFLICT (tenant) DO UPDATE SET latency_met = latency_met"
                    " + excluded.latency_met, latency_total = latency_total + 1",
                    (tenant, int(met_target)),
                )
            forget_before = now_ms - round(SETTLED_RETENTION.total_seconds() * 1000)
            db.execute("DELETE FROM settled WHERE settled_at < ?", (forget_before,))

        await self._write(job)

    async def checkpoint(self, tenant: str, hold_id: str, used_micros: int, tokens: int) -> None:
        now = self._clock.now()

        def job(db: sqlite3.Connection) -> None:
            # An expired hold is settled first, so a late checkpoint cannot bring it back.
            settle_expired_holds(db, now, tenant)
            db.execute(
                "UPDATE holds SET used = ?, tokens = ?, expires_at = ?"
                " WHERE tenant = ? AND hold_id = ?",
                (used_micros, tokens, epoch_ms(now) + self._ttl_ms, tenant, hold_id),
            )

        await self._write(job)

    async def ping(self) -> None:
        """Open the file if it is not open yet and take its write lock, releasing it at once:
        a file that can be read but not written (read-only, or locked by another process past
        the busy timeout) cannot take holds, so it does not count as answering."""
        await self._write(lambda db: None)

    async def recover(self) -> int:
        """Settle the holds of processes on this host that no longer run at their last
        checkpoint, and return how many there were. The first use of the ledger does this by
        itself; call it again when a process sharing the file may have crashed while this one
        kept running."""
        now = self._clock.now()
        return await self._write(lambda db: settle_dead_holds(db, now))

    async def aclose(self) -> None:
        """Close the connection on its own thread, then let the thread go. Idempotent."""
        if self._closed:
            return
        self._closed = True
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=False)

    # --- on the worker thread -------------------------------------------------------------

    async def _write(self, job: Callable[[sqlite3.Connection], T]) -> T:
        return await self._submit(job, "BEGIN IMMEDIATE")

    async def _read(self, job: Callable[[sqlite3.Connection], T]) -> T:
        # A deferred transaction: one consistent snapshot, and readers never wait for writers.
        return await self._submit(job, "BEGIN")

    async def _submit(self, job: Callable[[sqlite3.Connection], T], begin: str) -> T:
        # If the caller is cancelled the job still runs to COMMIT or ROLLBACK: never half a write.
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._transaction, job, begin)

    def _transaction(self, job: Callable[[sqlite3.Connection], T], begin: str) -> T:
        try:
            return transaction(self._connection(), begin, job)
        except sqlite3.OperationalError as error:
            raise LedgerUnavailable(f"{os.path.abspath(self._path)}: {error}") from error

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            db = open_database(self._path, self._busy_timeout_ms)
            try:
                # Lazily, on first use: whoever builds a ledger (the server, a CLI, a test)
                # gets a crashed predecessor's holds settled without having to ask.
                now = self._clock.now()
                settled = transaction(db, "BEGIN IMMEDIATE", lambda db: settle_dead_holds(db, now))
            except BaseException:
                db.close()
                raise
            if settled:
                log.warning(
                    "settled %d budget holds left in %s by processes that no longer run,"
                    " at their last checkpoints",
                    settled,
                    self._path,
                )
            self._db = db
        return self._db

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    @staticmethod
    def _limits(db: sqlite3.Connection, tenant: str) -> tuple[Limit, ...] | None:
        """The tenant's limits, or None when it was never configured."""
        row = db.execute("SELECT limits FROM tenants WHERE tenant = ?", (tenant,)).fetchone()
        return None if row is None or row[0] is None else decode_limits(row[0])

    @staticmethod
    def _spent(db: sqlite3.Connection, tenant: str, now: datetime) -> dict[str, int]:
        keys = list(window_keys(now).values())
        rows = db.execute(
            "SELECT window_key, micros FROM spend WHERE tenant = ?"
            f" AND window_key IN ({', '.join('?' * len(keys))})",
            (tenant, *keys),
        )
        return {key: micros for key, micros in rows}

    @staticmethod
    def _reserved(
        db: sqlite3.Connection, tenant: str, now: datetime, exclude_hold: str | None
    ) -> int:
        """Live holds' total, net of `exclude_hold` (`hold_id = NULL` matches nothing)."""
        row = db.execute(
            "SELECT COALESCE(SUM(CASE WHEN hold_id = ? THEN 0 ELSE amount END), 0) FROM holds"
            " WHERE tenant = ? AND expires_at > ?",
            (exclude_hold, tenant, epoch_ms(now)),
        ).fetchone()
        return int(row[0])

    def _budget_state(self, db: sqlite3.Connection, tenant: str, now: datetime) -> BudgetState:
        limits, target, met, total = self._tenant_row(db, tenant)
        states = limit_states(
            limits,
            self._spent(db, tenant, now),
            self._reserved(db, tenant, now, exclude_hold=None),
            now,
        )
        return budget_state(tenant, states, target, met, total)

    @staticmethod
    def _tenant_row(db: sqlite3.Connection, tenant: str) -> tuple[tuple[Limit, ...], int, int, int]:
        """(limits, latency target, met, total) in one read; no limits for a tenant never
        configured."""
        row = db.execute(
            "SELECT limits, latency_target_ms, latency_met, latency_total FROM tenants"
            " WHERE tenant = ?",
            (tenant,),
        ).fetchone()
        if row is None:
            return (), 0, 0, 0
        limits, target, met, total = row
        return (decode_limits(limits) if limits is not None else ()), target, met, total

    @staticmethod
    def _has_expired_holds(db: sqlite3.Connection, tenant: str, now: datetime) -> bool:
        row = db.execute(
            "SELECT 1 FROM holds WHERE tenant = ? AND expires_at <= ? LIMIT 1",
            (tenant, epoch_ms(now)),
        ).fetchone()
        return row is not None

    @staticmethod
    def _is_settled(db: sqlite3.Connection, tenant: str, hold_id: str) -> bool:
        row = db.execute(
            "SELECT 1 FROM settled WHERE tenant = ? AND hold_id = ?", (tenant, hold_id)
        ).fetchone()
        return row is not None


def charge(db: sqlite3.Connection, tenant: str, micros: int, tokens: int, now: datetime) -> None:
    """Add `micros` to every window containing `now` and `tokens` to this minute."""
    db.executemany(ADD_TO_SPEND, [(tenant, key, micros) for key in window_keys(now).values()])
    db.execute(ADD_TO_MINUTE, (tenant, minute_key(now), 0, tokens))


def admit_request(db: sqlite3.Connection, tenant: str, rate: RateLimit, now: datetime) -> None:
    """Count one request this minute, or raise RateLimitExceeded (the caller's transaction
    then rolls back, counting nothing). The caller settles expired holds first: their tokens
    count towards the minute."""
    minute = minute_key(now)
    row = db.execute(
        "SELECT requests, tokens FROM minutes WHERE tenant = ? AND minute_key = ?",
        (tenant, minute),
    ).fetchone()
    requests, tokens = row or (0, 0)
    check_admit(tenant, rate, requests, tokens, now)
    db.execute(ADD_TO_MINUTE, (tenant, minute, 1, 0))


def settle_at_checkpoint(
    db: sqlite3.Connection, holds: list[tuple[str, str, int, int]], now: datetime
) -> None:
    """Settle these (tenant, hold id, used, tokens) holds at their last checkpoint: charge it,
    delete the hold, and leave a non-final settled row so a late settle only tops it up."""
    now_ms = epoch_ms(now)
    for tenant, hold_id, used, tokens in holds:
        db.execute("DELETE FROM holds WHERE tenant = ? AND hold_id = ?", (tenant, hold_id))
        db.execute(
            "INSERT OR IGNORE INTO settled (tenant, hold_id, settled_at, micros, tokens, final)"
            " VALUES (?, ?, ?, ?, ?, 0)",
            (tenant, hold_id, now_ms, used, tokens),
        )
        if used or tokens:
            charge(db, tenant, used, tokens, now)


def settle_expired_holds(db: sqlite3.Connection, now: datetime, tenant: str | None = None) -> int:
    """Settle the expired holds (of `tenant`, or of everyone) at their last checkpoint; return
    how many. Run in a write transaction."""
    query = "SELECT tenant, hold_id, used, tokens FROM holds WHERE expires_at <= ?"
    params: tuple[object, ...] = (epoch_ms(now),)
    if tenant is not None:
        query, params = query + " AND tenant = ?", (*params, tenant)
    expired = [(str(t), str(h), int(u), int(k)) for t, h, u, k in db.execute(query, params)]
    settle_at_checkpoint(db, expired, now)
    return len(expired)


def settle_dead_holds(db: sqlite3.Connection, now: datetime) -> int:
    """Settle the holds whose owners are gone (see `is_gone`) at their last checkpoint; return
    how many. Run in a write transaction, so a process opening the file concurrently sees all
    of them settled or none."""
    me = this_process()
    owners = [row[0] for row in db.execute("SELECT DISTINCT owner FROM holds WHERE owner != ''")]
    settled = 0
    for text in owners:
        owner = ProcessId.parse(text)
        if owner is not None and is_gone(owner, me):
            rows = db.execute(
                "SELECT tenant, hold_id, used, tokens FROM holds WHERE owner = ?", (text,)
            )
            dead = [(str(t), str(h), int(u), int(k)) for t, h, u, k in rows]
            settle_at_checkpoint(db, dead, now)
            settled += len(dead)
    return settled
