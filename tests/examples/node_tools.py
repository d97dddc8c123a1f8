"""Node.js for the examples' tests: the node executable, with an example's npm packages
installed (`npm ci`, on first use or when its lock file is newer than the install); a real
`fareway serve` for them to call; and running an example against it.

Without node and npm the calling test is skipped, unless FAREWAY_REQUIRE_NODE=1 (CI), which
makes it fail instead.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from fareway.client import Window
from tests.e2e.servers import INSTANT, Fleet, Server, write_config

NPM_TIMEOUT_S = 300
NODE_TIMEOUT_S = 60


def node_with_packages(example: Path) -> str:
    """The node executable, `example`'s packages installed; or a skip (a failure under
    FAREWAY_REQUIRE_NODE=1) on a machine without node and npm."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node and npm:
        install(npm, example)
        return node
    message = f"node and npm are needed to run {example.name}: install Node.js 18+ and npm"
    if os.environ.get("FAREWAY_REQUIRE_NODE") == "1":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def install(npm: str, example: Path) -> None:
    """`npm ci` in `example` when its packages are missing or older than its lock file (npm ci
    writes node_modules/.package-lock.json)."""
    installed = example / "node_modules" / ".package-lock.json"
    lock = example / "package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    run(npm, "ci", "--no-audit", "--no-fund", "--loglevel=error", cwd=example)


def run(*command: str, cwd: Path) -> None:
    """Run `command` in `cwd`; fail the test with its output if it fails."""
    done = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=NPM_TIMEOUT_S, check=False
    )
    assert done.returncode == 0, f"{' '.join(command)} in {cwd} failed:\n{done.stdout}{done.stderr}"


@asynccontextmanager
async def serving(folder: Path, day_cap_micros: int) -> AsyncIterator[Server]:
    """A `fareway serve` process (memory ledger, instant sim models) whose tenant may spend
    `day_cap_micros` today."""
    fleet = Fleet(folder)
    config = write_config(
        folder / "fareway.yaml", {"type": "memory"}, {Window.DAY: day_cap_micros}, INSTANT
    )
    try:
        [started] = await fleet.start(config)
        yield started
    finally:
        await fleet.kill_all()


async def run_example(node: str, *args: str, cwd: Path, server: Server) -> tuple[str, str]:
    """Run `node args...` in `cwd`; its stdout, and the context a failed assertion should show
    (its output and the server's log). Asserts that it exited 0."""
    process = await asyncio.create_subprocess_exec(
        node, *args, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), NODE_TIMEOUT_S)
    out = stdout.decode()
    context = f"stdout:\n{out}\nstderr:\n{stderr.decode()}\nserver log:\n{server.log()}"
    assert process.returncode == 0, context
    return out, context
