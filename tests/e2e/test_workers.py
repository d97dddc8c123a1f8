"""`fareway serve --workers N`: one parent, N worker processes on one port sharing one ledger.

The parent is started as an operator would start it; the tests look at its process tree,
call it over separate channels (separate connections, which the kernel spreads among the
workers), and signal it: SIGHUP reaches every worker, SIGTERM drains them all and everything
exits 0, and a worker that dies takes the others and the parent down with a log line saying
which one and how.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from fareway.client import Window
from tests.e2e.servers import (
    CALL_TIMEOUT_S,
    FAREWAY,
    INSTANT,
    Fleet,
    Server,
    eventually,
    free_port,
    generate_to_done,
    limit,
    total_cost,
    wait_until_serving,
    write_config,
)

pytestmark = pytest.mark.slow

WORKERS = 2
CALLS = 6
DAY_CAP_MICROS = 1_000_000_000


async def start_workers(fleet: Fleet, tmp_path: Path, config: Path) -> Server:
    """`fareway serve --workers 2` on a free port, once it answers SERVING; the fleet kills
    the parent at the end (and the workers die with it)."""
    port = free_port()
    log_path = tmp_path / "workers.log"
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            *FAREWAY,
            "serve",
            "--workers",
            str(WORKERS),
            "--config",
            str(config),
            "--port",
            str(port),
            cwd=tmp_path,
            env=fleet._environment(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    server = Server("workers", process, f"127.0.0.1:{port}", log_path)
    fleet.servers.append(server)
    await wait_until_serving(server)
    # Serving means one worker answers; wait for both to say they listen.
    await until_logged(server, "fareway listening on", WORKERS)
    return server


async def until_logged(server: Server, text: str, times: int) -> None:
    """Wait until the parent's output (the workers' included) holds `text` `times` times."""

    async def count() -> int:
        return server.log().count(text)

    await eventually(count, lambda seen: seen >= times, CALL_TIMEOUT_S, f"{times} x {text!r}")


def alive(pids: list[int]) -> list[int]:
    """Those of `pids` that still exist."""
    return [pid for pid in pids if os.path.exists(f"/proc/{pid}")]


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid`, from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # exited meanwhile
        # pid (comm) state ppid ...: comm may hold spaces and parentheses, so split after it.
        ppid = int(stat.rpartition(")")[2].split()[1])
        if ppid == pid:
            found.append(int(entry))
    return found


def sqlite_config(tmp_path: Path) -> Path:
    return write_config(
        tmp_path / "fareway.yaml",
        {"type": "sqlite", "path": str(tmp_path / "ledger.db")},
        {Window.DAY: DAY_CAP_MICROS},
        INSTANT,
    )


async def test_workers_share_the_port_and_the_ledger_and_stop_together(
    fleet: Fleet, tmp_path: Path
) -> None:
    server = await start_workers(fleet, tmp_path, sqlite_config(tmp_path))
    workers = children(server.process.pid)
    assert len(workers) == WORKERS, server.log()
    [started] = [line for line in server.log().splitlines() if "serving with" in line]
    assert all(f"{pid}" in started for pid in workers), "the parent logs which pids serve"

    clients = [server.client() for _ in range(CALLS)]  # a channel, a connection, each
    try:
        results = await asyncio.gather(
            *(generate_to_done(client, f"question {i}", 20) for i, client in enumerate(clients))
        )
        spent = limit(await clients[0].get_budget(), Window.DAY).spent_micros
    finally:
        for client in clients:
            await client.aclose()
    assert spent == total_cost([done for _, done in results]), "one ledger for both workers"

    server.process.send_signal(signal.SIGHUP)
    await until_logged(server, "configuration reloaded from", WORKERS)

    server.process.send_signal(signal.SIGTERM)
    status = await asyncio.wait_for(server.process.wait(), CALL_TIMEOUT_S)

    assert status == 0, server.log()
    assert server.log().count("exited with status 0") == WORKERS
    assert not alive(workers), "every worker is gone"


async def test_a_worker_that_dies_stops_the_others_and_the_parent_fails(
    fleet: Fleet, tmp_path: Path
) -> None:
    server = await start_workers(fleet, tmp_path, sqlite_config(tmp_path))
    first, second = children(server.process.pid)

    os.kill(second, signal.SIGKILL)
    status = await asyncio.wait_for(server.process.wait(), CALL_TIMEOUT_S)

    assert status == 1
    assert f"(pid {second}) was killed by SIGKILL unexpectedly" in server.log()
    assert f"(pid {first}) exited with status 0" in server.log(), "the other drained"
