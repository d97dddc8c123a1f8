"""The SQLite ledger's file (`sqlite.py` does the ledger's work in it): opening it in WAL mode,
its schema and the migrations from older versions, and the one way to run a transaction.

Schema (PRAGMA user_version 3; instants are epoch milliseconds from the injected clock):

    tenants  (tenant PK, limits JSON or NULL until configured, latency_target_ms,
              latency_met, latency_total)
    spend    (tenant, window_key, micros)        PK (tenant, window_key); keys from windows.py
    holds    (tenant, hold_id, amount, expires_at, owner, used, tokens)
                                                 PK (tenant, hold_id); expired rows ignored,
                                                 settled at `used`/`tokens` by the next hold,
                                                 checkpoint or report; owner is `ProcessId` text,
                                                 '' for holds written by version 1 (left to
                                                 expire)
    settled  (tenant, hold_id, settled_at, micros, tokens, final)
                                                 PK (tenant, hold_id); kept SETTLED_RETENTION;
                                                 final 0: settled at a checkpoint, figures kept
    minutes  (tenant PK, minute_key, requests, tokens)   the current minute only

Version 1 and 2 files are migrated in place on open (`MIGRATIONS`); a file from a newer version is
refused rather than misread.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from typing import TypeVar

from fareway.core.errors import LedgerUnavailable

T = TypeVar("T")

SCHEMA_VERSION = 3
SCHEMA = (
    """CREATE TABLE IF NOT EXISTS tenants (
        tenant TEXT PRIMARY KEY,
        limits TEXT,
        latency_target_ms INTEGER NOT NULL DEFAULT 0,
        latency_met INTEGER NOT NULL DEFAULT 0,
        latency_total INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS spend (
        tenant TEXT NOT NULL, window_key TEXT NOT NULL, micros INTEGER NOT NULL,
        PRIMARY KEY (tenant, window_key))""",
    """CREATE TABLE IF NOT EXISTS holds (
        tenant TEXT NOT NULL, hold_id TEXT NOT NULL, amount INTEGER NOT NULL,
        expires_at INTEGER NOT NULL, owner TEXT NOT NULL DEFAULT '',
        used INTEGER NOT NULL DEFAULT 0, tokens INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (tenant, hold_id))""",
    "CREATE INDEX IF NOT EXISTS holds_by_expiry ON holds (expires_at)",
    """CREATE TABLE IF NOT EXISTS settled (
        tenant TEXT NOT NULL, hold_id TEXT NOT NULL, settled_at INTEGER NOT NULL,
        micros INTEGER NOT NULL DEFAULT 0, tokens INTEGER NOT NULL DEFAULT 0,
        final INTEGER NOT NULL DEFAULT 1,
        PRIMARY KEY (tenant, hold_id))""",
    "CREATE INDEX IF NOT EXISTS settled_by_age ON settled (settled_at)",
    """CREATE TABLE IF NOT EXISTS minutes (
        tenant TEXT PRIMARY KEY, minute_key TEXT NOT NULL,
        requests INTEGER NOT NULL, tokens INTEGER NOT NULL)""",
)

# The statements that bring a file from version N to N + 1, keyed by N. The new column's
# default lets a not yet upgraded fareway on the same file keep inserting holds (ownerless,
# so they are left to expire).
MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: ("ALTER TABLE holds ADD COLUMN owner TEXT NOT NULL DEFAULT ''",),
    2: (
        "ALTER TABLE holds ADD COLUMN used INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE holds ADD COLUMN tokens INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE settled ADD COLUMN micros INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE settled ADD COLUMN tokens INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE settled ADD COLUMN final INTEGER NOT NULL DEFAULT 1",
    ),
}


def open_database(path: str, busy_timeout_ms: int) -> sqlite3.Connection:
    """Open `path` in WAL mode and create the schema if it is missing. Raises
    LedgerUnavailable naming the path (and a missing folder) when it cannot be opened."""
    try:
        # Autocommit mode (isolation_level=None): transactions are only the ones we BEGIN.
        db = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout_ms / 1000)
    except sqlite3.OperationalError as error:
        raise LedgerUnavailable(cannot_open(path, error)) from error
    try:
        db.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")  # see the module docstring: survives kill -9
        transaction(db, "BEGIN IMMEDIATE", lambda db: create_schema(db, path))
    except sqlite3.OperationalError as error:
        db.close()
        raise LedgerUnavailable(cannot_open(path, error)) from error
    except BaseException:
        db.close()
        raise
    return db


def cannot_open(path: str, error: sqlite3.Error) -> str:
    """Why `path` cannot be opened, naming the file, for logs and start-up errors."""
    full = os.path.abspath(path)
    folder = os.path.dirname(full)
    if os.path.exists(folder) and not os.path.isdir(folder):
        return f"cannot open {full}: {folder} is not a folder"
    if not os.path.isdir(folder):
        return f"cannot open {full}: folder {folder} does not exist"
    if not os.access(folder, os.W_OK) or (os.path.exists(full) and not os.access(full, os.W_OK)):
        return f"cannot open {full}: not writable by this user ({error})"
    return f"cannot open {full}: {error}"


def create_schema(db: sqlite3.Connection, path: str) -> None:
    """Create missing tables and migrate an older file; refuse a file written by a newer
    schema rather than misread it. Runs inside BEGIN IMMEDIATE, so two processes opening an
    old file migrate it once."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise LedgerUnavailable(
            f"ledger file {os.path.abspath(path)} has schema version {version}; this fareway"
            f" reads up to {SCHEMA_VERSION}: upgrade fareway or point it at another file"
        )
    if version:  # 0 is a new, empty file: SCHEMA creates it at the current version
        for from_version in range(version, SCHEMA_VERSION):
            for statement in MIGRATIONS[from_version]:
                db.execute(statement)
    for statement in SCHEMA:
        db.execute(statement)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def transaction(db: sqlite3.Connection, begin: str, job: Callable[[sqlite3.Connection], T]) -> T:
    """Run `job` between `begin` and COMMIT; roll back and re-raise if it raises."""
    db.execute(begin)
    try:
        result = job(db)
    except BaseException:
        if db.in_transaction:  # SQLite rolls back by itself after some errors (a full disk)
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return result
