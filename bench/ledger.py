"""Ledger throughput: hold + settle pairs per second for each backend, side by side.

One operation is what every billed request costs the ledger: `hold` an estimate against a
capped tenant, then `settle` the actual cost with its tokens. N asyncio workers share a fixed
number of operations; each (backend, workers) cell is the median of several runs, each on a
fresh store (a new memory ledger, a new SQLite file, a new Redis key prefix, a new PostgreSQL
schema). Ratios compare
each backend with the memory ledger measured in the same invocation, so they are comparable
even when the machine is not.

`--cpu` measures instead what one Generate costs the ledger in this process's CPU time (every
thread's: SQLite runs on a thread of its own): the calls the engine makes before its first
event and after the answer (`generate_calls`), one request at a time, in microseconds per
request. Wall time would mostly measure waiting; CPU time is what a busy server runs out of.

    python bench/ledger.py                      # every backend; 1 and 16 workers
    python bench/ledger.py --ops 20000 --runs 7 --workers 1 4 16 64
    python bench/ledger.py --cpu --backends sqlite --ops 2000 --runs 7
    python bench/ledger.py --backends postgres --postgres-url postgresql://postgres@127.0.0.1/test
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import asyncpg
import redis

from fareway.budgets.ledger import Ledger, Limit, RateLimit
from fareway.budgets.memory import MemoryLedger
from fareway.budgets.postgres import PostgresLedger
from fareway.budgets.redis import RedisLedger
from fareway.budgets.sqlite import SqliteLedger
from fareway.budgets.windows import Window
from fareway.core.clock import SystemClock

BACKENDS = ("memory", "sqlite", "redis", "postgres")
TENANT = "bench"
HOLD_MICROS = 2_000
SETTLE_MICROS = 1_500
TOKENS = 300
# Generous enough never to refuse: the benchmark measures the check, not the refusal.
RATE = RateLimit(requests_per_minute=10**9, tokens_per_minute=10**12)


@dataclass(frozen=True)
class Options:
    ops: int
    workers: tuple[int, ...]
    runs: int
    backends: tuple[str, ...]
    redis_url: str
    postgres_url: str
    directory: Path | None  # None: a temporary folder, removed afterwards
    cpu: bool = False  # CPU time per Generate instead of throughput


def parse_args(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="python bench/ledger.py",
        description=(
            "Measure ledger throughput: hold + settle operations per second for each backend "
            "and number of concurrent asyncio workers, as the median of several runs, printed "
            "as a markdown table with each backend's ratio to the memory ledger."
        ),
    )
    parser.add_argument(
        "--ops", type=int, default=5_000, help="operations (hold + settle) per run (5000)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[1, 16],
        help="concurrent asyncio workers sharing the operations; one column each (1 16)",
    )
    parser.add_argument("--runs", type=int, default=5, help="runs per cell; the median (5)")
    parser.add_argument(
        "--backends",
        nargs="+",
        choices=BACKENDS,
        default=list(BACKENDS),
        help="which ledgers to measure (all); memory is always measured, for the ratios",
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("FAREWAY_REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="Redis for the redis backend ($FAREWAY_REDIS_URL or redis://127.0.0.1:6379/0); "
        "the benchmark writes under a fresh key prefix and deletes it afterwards",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("FAREWAY_POSTGRES_URL", "postgresql://127.0.0.1:5432/postgres"),
        help="PostgreSQL for the postgres backend ($FAREWAY_POSTGRES_URL or "
        "postgresql://127.0.0.1:5432/postgres); the benchmark works in a fresh schema per run "
        "and drops it afterwards",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        default=None,
        help="folder for the SQLite files (a temporary folder); its disk sets the speed",
    )
    parser.add_argument(
        "--cpu",
        action="store_true",
        help="measure process CPU microseconds per Generate's ledger calls, one request at a "
        "time, instead of throughput (--workers is then ignored)",
    )
    args = parser.parse_args(argv)
    if args.ops < max(args.workers) or args.runs < 1 or min(args.workers) < 1:
        parser.error("need --runs >= 1, --workers >= 1 and --ops >= the largest --workers")
    backends = ("memory", *(b for b in args.backends if b != "memory"))
    return Options(
        ops=args.ops,
        workers=tuple(args.workers),
        runs=args.runs,
        backends=backends,
        redis_url=args.redis_url,
        postgres_url=args.postgres_url,
        directory=args.dir,
        cpu=args.cpu,
    )


async def run_once(ledger: Ledger, ops: int, workers: int) -> float:
    """Operations per second for `ops` hold + settle pairs shared by `workers` tasks."""
    await ledger.configure(TENANT, [Limit(Window.DAY, 10**15)])
    await ledger.hold(TENANT, "warm-up", 1)  # opens files and connections, loads scripts
    await ledger.settle(TENANT, "warm-up", 1)

    async def worker(number: int, count: int) -> None:
        for i in range(count):
            hold_id = f"w{number}-{i}"
            await ledger.hold(TENANT, hold_id, HOLD_MICROS)
            await ledger.settle(TENANT, hold_id, SETTLE_MICROS, tokens=TOKENS)

    shares = [ops // workers + (1 if n < ops % workers else 0) for n in range(workers)]
    started = time.perf_counter()
    await asyncio.gather(*(worker(n, share) for n, share in enumerate(shares)))
    return ops / (time.perf_counter() - started)


async def generate_calls(ledger: Ledger, hold_id: str) -> None:
    """The ledger calls one Generate makes in the engine, in order (router_service's shared
    budget read is left out: concurrent requests share it). Until issue 13 they were five:
    admit, hold, state, then settle and record_latency."""
    await ledger.hold(TENANT, hold_id, HOLD_MICROS, admit=RATE)
    await ledger.settle(TENANT, hold_id, SETTLE_MICROS, tokens=TOKENS, met_target=True)


async def cpu_once(ledger: Ledger, requests: int) -> float:
    """Process CPU microseconds per request for `requests` Generates' ledger calls in a row."""
    await ledger.configure(TENANT, [Limit(Window.DAY, 10**15)], latency_target_ms=1_000)
    await generate_calls(ledger, "warm-up")  # opens files and connections, loads scripts
    started = time.process_time()
    for i in range(requests):
        await generate_calls(ledger, f"r{i}")
    return (time.process_time() - started) / requests * 1e6


async def measure(backend: str, options: Options, workers: int) -> float:
    """The median throughput of `options.runs` runs, each on a fresh store."""
    results = []
    for run in range(options.runs):
        ledger, cleanup = open_ledger(backend, options, f"{workers}w-run{run}")
        try:
            if options.cpu:
                results.append(await cpu_once(ledger, options.ops))
            else:
                results.append(await run_once(ledger, options.ops, workers))
        finally:
            await ledger.aclose()
            await asyncio.to_thread(cleanup)
    return statistics.median(results)


def open_ledger(backend: str, options: Options, name: str) -> tuple[Ledger, Callable[[], None]]:
    """A ledger on a fresh store, and how to remove that store afterwards (blocking)."""
    clock = SystemClock()
    if backend == "memory":
        return MemoryLedger(clock), lambda: None
    if backend == "sqlite":
        assert options.directory is not None, "main() fills in the folder"
        path = options.directory / f"ledger-{name}.db"
        return SqliteLedger(path, clock), lambda: _remove_sqlite(path)
    if backend == "postgres":
        schema = f"fareway_bench_{uuid.uuid4().hex[:16]}"
        ledger = PostgresLedger(options.postgres_url, clock, schema=schema)
        return ledger, lambda: asyncio.run(_drop_schema(options.postgres_url, schema))
    prefix = f"fareway-bench-{uuid.uuid4().hex}"
    ledger = RedisLedger(options.redis_url, clock, prefix=prefix)
    return ledger, lambda: _delete_keys(options.redis_url, prefix)


def _remove_sqlite(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _delete_keys(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1_000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


async def _drop_schema(url: str, schema: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await connection.close()


async def postgres_answers(url: str) -> bool:
    try:
        connection = await asyncpg.connect(url, timeout=2)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False
    await connection.close()
    return True


def redis_answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def table(figures: dict[str, dict[int, float]], workers: Sequence[int]) -> str:
    """Markdown: one row per backend; per worker count, ops/s and the ratio to memory."""
    header = ["backend"]
    for count in workers:
        label = "worker" if count == 1 else "workers"
        header += [f"{count} {label}: ops/s", "vs memory"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" + "---:|" * (len(header) - 1)]
    for backend, cells in figures.items():
        row = [backend]
        for count in workers:
            row += [f"{cells[count]:,.0f}", f"{cells[count] / figures['memory'][count]:.3f}"]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def describe(options: Options) -> str:
    return (
        f"{options.ops} hold+settle operations per run, median of {options.runs} runs; "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
        f"redis-py {redis.__version__}, asyncpg {asyncpg.__version__}, {os.cpu_count()} CPUs"
    )


async def main(argv: Sequence[str]) -> None:
    options = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fareway-bench-") as scratch:
        await run(replace(options, directory=options.directory or Path(scratch)))


async def run(options: Options) -> None:
    backends = list(options.backends)
    if "redis" in backends and not redis_answers(options.redis_url):
        print(f"no Redis at {options.redis_url}: leaving the redis row out", file=sys.stderr)
        backends.remove("redis")
    if "postgres" in backends and not await postgres_answers(options.postgres_url):
        print(
            f"no PostgreSQL at {options.postgres_url}: leaving the postgres row out",
            file=sys.stderr,
        )
        backends.remove("postgres")
    if options.cpu:
        await run_cpu(options, backends)
        return
    figures: dict[str, dict[int, float]] = {}
    for backend in backends:
        figures[backend] = {}
        for workers in options.workers:
            figures[backend][workers] = await measure(backend, options, workers)
            print(f"measured {backend} with {workers} worker(s)", file=sys.stderr)
    print(describe(options))
    print()
    print(table(figures, options.workers))


async def run_cpu(options: Options, backends: Sequence[str]) -> None:
    """One line per backend: the median CPU microseconds per Generate's ledger calls."""
    print(
        f"CPU per Generate's ledger calls, {options.ops} requests in a row per run, median of "
        f"{options.runs} runs; Python {platform.python_version()}, SQLite "
        f"{sqlite3.sqlite_version}"
    )
    for backend in backends:
        print(f"{backend}: {await measure(backend, options, 1):.1f} us per request")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
