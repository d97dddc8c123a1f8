"""Per-tenant cost caps: prices, windows, limits and the ledgers that hold spend.

Usable on its own: nothing here knows about gRPC, routing or providers.

    ledger.py      the `Ledger` Protocol (the contract), its value types and refusals
    memory.py      MemoryLedger: a dict; tests and single-process use, nothing survives
    sqlite.py      SqliteLedger: the durable embedded default, one WAL file, several processes
    sqlite_file.py its file: WAL mode, the schema and its migrations, transactions
    redis.py       RedisLedger: several replicas share one ledger, one Lua script per change
    redis_scripts.py  those Lua scripts
    postgres.py    PostgresLedger: several replicas share one durable ledger, one statement
                   (one transaction, a server-side function) per call
    postgres_schema.py  its tables, functions and versioned migrations
    accounting.py  the bookkeeping every backend shares: window keys, state figures, refusals
    codec.py       limits as the JSON text the sqlite, redis and postgres ledgers store
    processes.py   who owns a SQLite hold and whether that process is gone (crash recovery)
    windows.py     UTC calendar windows (day, month, total)
    pricing.py     token prices to micro-USD

Every ledger passes the one contract suite in tests/budgets/contract.
"""
