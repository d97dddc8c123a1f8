"""`fareway eval`: how well routing trades cost for quality on labelled data, offline.

For each data set (RouteLLM's GSM8K, MMLU and MT-Bench from the routing-eval data, and any
JSONL file of your own traffic in `fareway.evaluation.routellm`'s format) it prints RouteLLM's
figures for the reference routers (random, prompt length, the oracle): APGR, CPT(50%) and
CPT(80%), each with a bootstrap interval; then, for each of fareway's strategies asked for,
its operating point (share of calls to the powerful tier, PGR) beside random at that share.
Strategies route in process, as the server builds them from the embedded default
configuration (or `--config`); nothing is served and no model is called. MT-Bench has 72
prompts: read its intervals, and never it alone.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy and the evaluation code load when the command runs, not for `chat`
    from fareway.evaluation.dataset import LabelledSet
    from fareway.evaluation.replay import Progress

BENCHMARKS = ("gsm8k", "mmlu", "mt-bench")


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`eval` under `commands`."""
    evaluate = commands.add_parser(
        "eval", help="score routing on labelled data (APGR, CPT), offline", description=__doc__
    )
    evaluate.add_argument(
        "--benchmark",
        nargs="*",
        choices=BENCHMARKS,
        default=None,
        help="RouteLLM benchmarks to replay (default: all three, unless --jsonl is given)",
    )
    evaluate.add_argument(
        "--jsonl", nargs="*", default=[], metavar="FILE", help="labelled traffic of your own"
    )
    evaluate.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="the routing-eval folder (default: ../shared/data/routing-eval beside the repo)",
    )
    evaluate.add_argument(
        "--strategy",
        nargs="*",
        default=None,
        help="fareway strategies to replay (default: every one that can run offline)",
    )
    evaluate.add_argument("--config", metavar="FILE", help="configuration to build them from")
    evaluate.add_argument(
        "--bootstrap",
        type=int,
        default=200,
        metavar="N",
        help="resamples for the intervals (default: 200)",
    )
    evaluate.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    evaluate.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """The command's body."""
    import asyncio

    import numpy as np

    from fareway.config.loader import load_config
    from fareway.evaluation.metrics import bootstrap, operating_point
    from fareway.evaluation.references import (
        length_scores,
        oracle_scores,
        random_scores,
    )
    from fareway.evaluation.replay import replayable, strong_calls
    from fareway.routing.embedders import EmbedderPool

    sets = _sets(args)
    config = load_config(args.config)
    strategies = args.strategy if args.strategy is not None else replayable(config)
    embedders = EmbedderPool()
    rng = np.random.default_rng(args.seed)
    for data in sets:
        print(_header(data))
        print(f"  {'router':<12}{'APGR [95%]':<24}{'CPT(50%)':<12}CPT(80%)")
        for name, scores in (
            ("random", random_scores(data, rng)),
            ("length", length_scores(data)),
            ("oracle", oracle_scores(data)),
        ):
            figures = bootstrap(scores, data, rng, resamples=args.bootstrap)
            apgr = figures.apgr
            interval = f"{apgr.estimate:.3f} [{apgr.low:.3f}, {apgr.high:.3f}]"
            print(
                f"  {name:<12}{interval:<24}{figures.cpt50.estimate:<12.1%}"
                f"{figures.cpt80.estimate:.1%}"
            )
        if strategies:
            print(f"  {'strategy':<12}{'strong calls':<16}{'PGR':<10}random at that share")
        for name in strategies:
            calls = asyncio.run(strong_calls(data, name, config, embedders, _progress(name)))
            point = operating_point(calls, data)
            print(
                f"  {name:<12}{point.strong_share:<16.1%}{point.pgr:<10.3f}{point.random_pgr:.3f}"
            )
        print()
    return 0


def _sets(args: argparse.Namespace) -> list[LabelledSet]:
    from fareway.evaluation.routellm import load_benchmark, load_jsonl

    names: Sequence[str] = args.benchmark
    if names is None:
        names = () if args.jsonl else BENCHMARKS
    sets = [load_benchmark(name, args.data) for name in names]
    sets += [load_jsonl(Path(path)) for path in args.jsonl]
    return sets


def _header(data: LabelledSet) -> str:
    weak, strong = data.weak_quality().mean(), data.strong_quality().mean()
    return f"{data.benchmark}: {len(data)} prompts; weak {weak:.3f}, strong {strong:.3f}"


def _progress(name: str) -> Progress | None:
    """A progress line on stderr while a strategy routes, when stderr is a terminal."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        end = "\n" if done == total else ""
        print(f"\r  routing with {name}: {done}/{total}", end=end, file=sys.stderr, flush=True)

    return show
