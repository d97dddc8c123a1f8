"""The labelled data `fareway eval` and `fareway train` read: the same flags, loaded one way.

`--benchmark` names RouteLLM's sets (their labels ship with fareway) or, for `eval` only,
RouterArena (evaluation-only by its own rules, read from `--data`); `--jsonl` adds files of a
user's own traffic; `--data` points at a routing-eval folder holding the original files.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the evaluation code loads when a command runs, not for `chat`
    from fareway.evaluation.dataset import LabelledSet

ROUTELLM = ("gsm8k", "mmlu", "mt-bench")
ROUTERARENA = "routerarena"


def add_arguments(
    parser: argparse.ArgumentParser, benchmarks: Sequence[str], default: Sequence[str]
) -> None:
    """`--benchmark` (of `benchmarks`; `default` unless --jsonl is given), `--jsonl`, `--data`."""
    parser.add_argument(
        "--benchmark",
        nargs="*",
        choices=benchmarks,
        default=None,
        help=f"benchmarks to read (default: {' '.join(default)}, unless --jsonl is given)",
    )
    parser.add_argument(
        "--jsonl", nargs="*", default=[], metavar="FILE", help="labelled traffic of your own"
    )
    parser.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="a routing-eval folder to read RouteLLM's original files and RouterArena's from "
        "(default: RouteLLM's labels shipped with fareway; RouterArena from "
        "../shared/data/routing-eval beside the repo)",
    )


def load_sets(args: argparse.Namespace, default: Sequence[str]) -> list[LabelledSet]:
    """The sets the flags of `add_arguments` name, benchmarks first, in the order given."""
    from fareway.evaluation.routellm import load_benchmark, load_jsonl
    from fareway.evaluation.routerarena import load_routerarena

    names: Sequence[str] = args.benchmark
    if names is None:
        names = () if args.jsonl else default
    sets = [
        load_routerarena(args.data) if name == ROUTERARENA else load_benchmark(name, args.data)
        for name in names
    ]
    return sets + [load_jsonl(Path(path)) for path in args.jsonl]
