"""Rebuild the shipped copy of RouteLLM's labels (`evaluation/data/routellm.jsonl.xz`) from
RouteLLM's original files, through the same loaders that read them (`fareway.evaluation.routellm`),
so the copy holds exactly what those loaders produce and nothing more.

    .venv/bin/python tools/pack_routellm.py [--data DIR] [--out FILE]

`--data` is the routing-eval folder (default: the one beside the repository). Run it when the
loaders change; tests/evaluation/test_evaluation_bundled.py fails until the copy matches them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fareway.evaluation.bundled import SHIPPED, write_copy
from fareway.evaluation.routellm import BENCHMARKS, default_data_dir, load_benchmark

OUT = Path(__file__).resolve().parent.parent / "evaluation" / "data" / SHIPPED


def main() -> None:
    """Load each benchmark from the originals and write them all to one compressed file."""
    parser = argparse.ArgumentParser(description="Rebuild the shipped copy of RouteLLM's labels.")
    parser.add_argument("--data", type=Path, default=default_data_dir(), metavar="DIR")
    parser.add_argument("--out", type=Path, default=OUT, metavar="FILE")
    args = parser.parse_args()
    sets = [load_benchmark(name, args.data) for name in BENCHMARKS]
    write_copy(sets, args.out)
    counts = ", ".join(f"{data.benchmark} {len(data)}" for data in sets)
    print(f"{args.out}: {counts}; {args.out.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
