"""bench/route.py end to end with tiny counts, so the benchmark cannot rot: `fareway serve` and
the empty servicer in child processes, the load in another, and the start-up measurement. No
timing assertions: only that every row is there."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "route.py"


def run(*args: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_the_route_benchmark_measures_the_server_and_the_empty_servicer() -> None:
    lines = run("--calls", "20", "--warmup", "4", "--runs", "1", "--callers", "1,2", "--empty")
    rows = [line for line in lines if line.startswith(("| fareway serve |", "| empty servicer |"))]
    assert [row.split("|")[1:3] for row in rows] == [
        [" fareway serve ", " 1 "],
        [" fareway serve ", " 2 "],
        [" empty servicer ", " 1 "],
        [" empty servicer ", " 2 "],
    ]


def test_the_route_benchmark_measures_import_and_start_times() -> None:
    lines = run("--startup", "--startup-runs", "1")
    assert any(line.startswith("| installed |") for line in lines)
