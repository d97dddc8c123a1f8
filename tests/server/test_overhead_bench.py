"""bench/overhead.py end to end in its smoke mode, so the comparison harness cannot rot: the fake
upstream, the bare relay and `fareway serve` in child processes, a load process per step, the SDK
straight at the upstream as the floor. No timing assertions: only that every configuration has a
row at each concurrency, with streams completed and no errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "overhead.py"


def test_the_overhead_benchmark_streams_through_every_configuration(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--smoke", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    header = next(line for line in lines if line.startswith("| configuration |"))
    columns = [cell.strip() for cell in header.split("|")[1:-1]]
    rows = [
        dict(zip(columns, (cell.strip() for cell in line.split("|")[1:-1]), strict=True))
        for line in lines
        if line.startswith(("| direct |", "| relay |", "| fareway |"))
    ]
    assert [[row["configuration"], row["concurrent"]] for row in rows] == [
        ["direct", "1"],
        ["direct", "2"],
        ["relay", "1"],
        ["relay", "2"],
        ["fareway", "1"],
        ["fareway", "2"],
    ]
    for row in rows:
        assert int(row["streams"].replace(",", "")) > 0, row  # completed
        assert row["errors"] == row["refused"] == row["past deadline"] == "0", row
    assert (tmp_path / "overhead.md").read_text().startswith("Machine:")
