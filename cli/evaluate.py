"""`fareway eval`: how well routing trades cost for quality on labelled data, offline.

For each data set (RouteLLM's GSM8K, MMLU and MT-Bench, whose labels ship with fareway;
RouterArena's two-model sample from the routing-eval data; any JSONL file of your own traffic
in `fareway.evaluation.routellm`'s format) it reports RouteLLM's figures for the reference
routers (random, prompt length, the oracle): APGR, CPT(50%) and CPT(80%), each with a bootstrap
interval; then, for each of fareway's strategies asked for, its operating point (share of calls
to the powerful tier, PGR) beside random at that share. A strategy whose decisions carry a
`<name>.strong_score` signal is a scoring router: it gets a full curve and figures too.
Strategies route in process, as the server builds them from the embedded default configuration
(or `--config`); nothing is served and no model is called. MT-Bench has 72 prompts: read its
intervals, and never it alone.

Output: the tables as Markdown on stdout and in `<out>/results.md`, and one plot per data set,
`<out>/<benchmark>.png` (matplotlib: `pip install 'fareway[eval]'`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from fareway.cli import labelled
from fareway.cli.labelled import ROUTELLM, ROUTERARENA
from fareway.cli.progress import progress_bar

if TYPE_CHECKING:  # numpy and the evaluation code load when the command runs, not for `chat`
    import numpy as np

    from fareway.config.schema import FarewayConfig
    from fareway.evaluation.dataset import FloatArray, LabelledSet
    from fareway.evaluation.metrics import Curve, OperatingPoint, SummaryIntervals
    from fareway.routing.embedders import EmbedderPool

BENCHMARKS = (*ROUTELLM, ROUTERARENA)
DEFAULT_OUT = Path("fareway-eval")
RESULTS = Path("results.md")


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`eval` under `commands`."""
    evaluate = commands.add_parser(
        "eval", help="score routing on labelled data (APGR, CPT), offline", description=__doc__
    )
    labelled.add_arguments(evaluate, BENCHMARKS, ROUTELLM)
    evaluate.add_argument(
        "--strategy",
        nargs="*",
        default=None,
        help="fareway strategies to replay (default: every one that can run offline)",
    )
    evaluate.add_argument("--config", metavar="FILE", help="configuration to build them from")
    evaluate.add_argument(
        "--out",
        type=Path,
        default=DEFAULT_OUT,
        metavar="DIR",
        help=f"folder for the plots and {RESULTS} (default: ./{DEFAULT_OUT})",
    )
    evaluate.add_argument(
        "--bootstrap",
        type=int,
        default=200,
        metavar="N",
        help="resamples for the intervals (default: 200)",
    )
    evaluate.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    evaluate.set_defaults(run=run)


@dataclass(frozen=True)
class _Scored:
    """A router with a strong-score per prompt: its curve and its figures with intervals."""

    curve: Curve
    figures: SummaryIntervals


@dataclass(frozen=True)
class _Report:
    """Everything reported for one data set."""

    data: LabelledSet
    routers: dict[str, _Scored]
    points: dict[str, OperatingPoint]


def run(args: argparse.Namespace) -> int:
    """The command's body."""
    import numpy as np

    from fareway.config.loader import load_config
    from fareway.evaluation.plot import plot, require_matplotlib
    from fareway.evaluation.replay import replayable
    from fareway.routing.embedders import EmbedderPool

    require_matplotlib()  # now, not after minutes of routing
    sets = labelled.load_sets(args, ROUTELLM)
    config = load_config(args.config)
    strategies = args.strategy if args.strategy is not None else replayable(config)
    embedders = EmbedderPool()
    rng = np.random.default_rng(args.seed)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    document = [_preamble(args)]
    print(document[0])
    for data in sets:
        report = _report(data, strategies, config, embedders, rng, args.bootstrap)
        plot(
            out / f"{data.benchmark}.png",
            data,
            {name: scored.curve for name, scored in report.routers.items()},
            report.points,
        )
        document.append(_markdown(report))
        print(document[-1])
        # After every set, so that a long run stopped later keeps what it finished.
        (out / RESULTS).write_text("\n".join(document), encoding="utf-8")
    print(f"wrote {out / RESULTS} and {len(sets)} plot(s) in {out}", file=sys.stderr)
    return 0


def _report(
    data: LabelledSet,
    strategies: Sequence[str],
    config: FarewayConfig,
    embedders: EmbedderPool,
    rng: np.random.Generator,
    resamples: int,
) -> _Report:
    """The reference routers' figures, then each strategy's operating point (and figures)."""
    import asyncio

    from fareway.evaluation.metrics import operating_point
    from fareway.evaluation.references import length_scores, oracle_scores, random_scores
    from fareway.evaluation.replay import replay

    routers = {
        "random": _scored(random_scores(data, rng), data, rng, resamples),
        "length": _scored(length_scores(data), data, rng, resamples),
        "oracle": _scored(oracle_scores(data), data, rng, resamples),
    }
    points: dict[str, OperatingPoint] = {}
    for name in strategies:
        progress = progress_bar(f"  {data.benchmark}: {name}", sys.stderr)
        replayed = asyncio.run(replay(data, name, config, embedders, progress))
        points[name] = operating_point(replayed.strong_calls, data)
        if replayed.scores is not None:
            routers[name] = _scored(replayed.scores, data, rng, resamples)
    return _Report(data, routers, points)


def _scored(
    scores: FloatArray, data: LabelledSet, rng: np.random.Generator, resamples: int
) -> _Scored:
    from fareway.evaluation.metrics import bootstrap, cost_quality_curve

    curve = cost_quality_curve(scores, data.weak_quality(), data.strong_quality())
    return _Scored(curve, bootstrap(scores, data, rng, resamples=resamples))


def _preamble(args: argparse.Namespace) -> str:
    return (
        "# fareway eval\n\n"
        f"Intervals: 95% percentile bootstrap, {args.bootstrap} resamples, seed {args.seed}. "
        "CPT(x): the least share of strong calls reaching PGR x.\n"
    )


def _markdown(report: _Report) -> str:
    """One data set's section: its header, the routers' table, the strategies' table."""
    lines = [
        f"## {_header(report.data)}",
        "",
        "| router | APGR [95%] | CPT(50%) [95%] | CPT(80%) [95%] |",
        "|---|---|---|---|",
    ]
    for name, scored in report.routers.items():
        figures = scored.figures
        lines.append(
            f"| {name} | {figures.apgr.formatted('.3f')} | {figures.cpt50.formatted('.1%')} "
            f"| {figures.cpt80.formatted('.1%')} |"
        )
    if report.points:
        lines += [
            "",
            "| strategy | strong calls | PGR | random at that share |",
            "|---|---|---|---|",
        ]
    for name, point in report.points.items():
        lines.append(
            f"| {name} | {point.strong_share:.1%} | {point.pgr:.3f} | {point.random_pgr:.3f} |"
        )
    return "\n".join(lines) + "\n"


def _header(data: LabelledSet) -> str:
    weak, strong = data.weak_quality().mean(), data.strong_quality().mean()
    header = f"{data.benchmark}: {len(data):,} prompts; weak {weak:.3f}, strong {strong:.3f}"
    if data.has_costs():
        header += (
            f"; cost per prompt weak {data.weak_cost().mean():.3g}, "
            f"strong {data.strong_cost().mean():.3g}"
        )
    return header
