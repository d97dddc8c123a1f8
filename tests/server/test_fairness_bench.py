"""bench/fairness.py's core with tiny sizes against the harness server, so the benchmark
cannot rot. No timing assertions: only that every phase ran and the table shows it."""

from __future__ import annotations

from bench.fairness import InProcessLoad, Load, Options, huge_prompt, measure, table
from tests.server.harness import TENANT_KEY, Harness


async def test_the_fairness_benchmark_runs(harness: Harness) -> None:
    target = f"127.0.0.1:{harness.running.port}"
    options = Options(heavy=2, prompt_bytes=4096, calls=5, rounds=2, warmup=2, key=TENANT_KEY)
    loads: dict[str, Load] = {
        "huge": InProcessLoad(target, options.prompt_bytes, options.heavy, TENANT_KEY),
        "control": InProcessLoad(target, 64, options.heavy, TENANT_KEY),
    }

    phases = await measure(target, options, loads)

    assert [p.name for p in phases] == ["idle", "huge", "control"]
    assert all(len(p.latencies_ms) == 10 for p in phases)
    assert all(p.heavy_answers > 0 and p.heavy_errors == 0 for p in phases[1:])
    rendered = table(phases).splitlines()
    assert len(rendered) == 5
    assert rendered[2].startswith("| idle | 10 |")


def test_the_huge_prompt_has_the_size_asked_for() -> None:
    assert len(huge_prompt(10_000).encode()) == 10_000
