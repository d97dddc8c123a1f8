"""Node.js for the examples' tests: the node executable, with an example's npm packages
installed (`npm ci`, on first use or when its lock file is newer than the install).

Without node and npm the calling test is skipped, unless FAREWAY_REQUIRE_NODE=1 (CI), which
makes it fail instead.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

NPM_TIMEOUT_S = 300


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
