"""`fareway train`: fit the learned router on labelled data and write its model file.

The data is RouteLLM's benchmarks (the copy fareway ships, or `--data`'s originals) and any
JSONL files of your own traffic (`fareway.evaluation.routellm`'s format). The model file is
JSON of numbers (`fareway.routing.learned.model`); serve it with a `type: learned` strategy
whose `model` names it. The threshold is calibrated to a share of strong calls
(`--strong-share`), or to the largest share whose mean cost per prompt fits `--budget` (on
data that records both models' costs).

`--protocols` fits nothing to keep: it scores the recipe under leave-one-benchmark-out (each
set scored by a model trained on the others) and under 5-fold cross-validation within each set
(the "trained on your own traffic" case), beside prompt length and random, with intervals.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from fareway.cli import labelled
from fareway.cli.labelled import ROUTELLM

if TYPE_CHECKING:  # numpy and the training code load when the command runs
    import numpy as np

    from fareway.evaluation.dataset import FloatArray, LabelledSet
    from fareway.evaluation.training import Prepared, Recipe

DEFAULT_BENCHMARKS = ("gsm8k", "mmlu")  # the shipped model's; MT-Bench stays held out


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`train` under `commands`."""
    train = commands.add_parser(
        "train", help="fit the learned router on labelled data", description=__doc__
    )
    labelled.add_arguments(train, ROUTELLM, DEFAULT_BENCHMARKS)
    train.add_argument(
        "--label",
        choices=("gain", "weak_fails"),
        default=None,
        help="what the model predicts (default: weak_fails, the weak model falls short)",
    )
    train.add_argument(
        "--l2",
        type=float,
        default=None,
        help="ridge penalty (default: chosen by cross-validation on the training data)",
    )
    calibration = train.add_mutually_exclusive_group()
    calibration.add_argument(
        "--strong-share",
        type=float,
        default=0.3,
        metavar="S",
        help="share of strong calls to calibrate to (default: 0.3)",
    )
    calibration.add_argument(
        "--budget", type=float, metavar="COST", help="mean cost per prompt to calibrate to"
    )
    train.add_argument(
        "--out", type=Path, default=Path("learned.json"), help="model file (default: learned.json)"
    )
    train.add_argument(
        "--protocols", action="store_true", help="score the recipe (leave one out, k-fold) only"
    )
    train.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    train.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """The command's body."""
    from fareway.cli.arguments import CommandError
    from fareway.evaluation.training import prepare
    from fareway.routing.embedders import EmbedderPool

    recipe = _recipe(args)
    sets = labelled.load_sets(args, DEFAULT_BENCHMARKS)
    if args.budget is not None and not all(s.has_costs() for s in sets):
        raise CommandError("--budget needs data that records both models' costs per prompt")
    embedder = EmbedderPool().get(recipe.embedder)
    prepared = [prepare(data, embedder, recipe) for data in sets]
    if args.protocols:
        _report_protocols(prepared, recipe, args.seed)
        return 0
    _train(prepared, recipe, args)
    return 0


def _recipe(args: argparse.Namespace) -> Recipe:
    from dataclasses import replace

    from fareway.evaluation.training import Recipe

    recipe = Recipe()
    if args.label is not None:
        recipe = replace(recipe, label=args.label)
    if args.l2 is not None:
        recipe = replace(recipe, l2=args.l2)
    return recipe


def _train(prepared: list[Prepared], recipe: Recipe, args: argparse.Namespace) -> None:
    from dataclasses import replace

    import numpy as np

    from fareway.evaluation.metrics import evaluate
    from fareway.evaluation.training import fit, share_for_budget
    from fareway.routing.learned.model import save_model

    model = fit(prepared, recipe, args.strong_share)
    if args.budget is not None:
        scores = np.concatenate([model.strong_scores(p.inputs) for p in prepared])
        weak = np.concatenate([p.data.weak_cost() for p in prepared])
        strong = np.concatenate([p.data.strong_cost() for p in prepared])
        model = replace(model, strong_share=share_for_budget(scores, weak, strong, args.budget))
    save_model(model, args.out)
    print(f"wrote {args.out}: trained on {model.about['trained_on']}")
    print(
        f"  strong share {model.strong_share:.1%}: requests with learned.strong_score >= "
        f"{model.threshold:.2f} go strong"
    )
    for p in prepared:
        apgr = evaluate(model.strong_scores(p.inputs), p.data).apgr
        print(f"  {p.data.benchmark}: APGR {apgr:.3f} on its own training data (optimistic)")


def _report_protocols(prepared: list[Prepared], recipe: Recipe, seed: int) -> None:
    import numpy as np

    from fareway.evaluation.protocols import k_fold, leave_one_out
    from fareway.evaluation.references import length_scores, random_scores

    rng = np.random.default_rng(seed)
    by_name = {p.data.benchmark: p for p in prepared}
    print(f"{'set':<12}{'protocol':<16}{'APGR [95%]':<24}{'CPT(50%)':<12}CPT(80%)")
    held_out = leave_one_out(by_name, recipe) if len(by_name) > 1 else {}
    for name, p in by_name.items():
        rows = [
            ("random", random_scores(p.data, rng)),
            ("length", length_scores(p.data)),
            ("k-fold", k_fold(p, recipe, rng)),
        ]
        if name in held_out:
            rows.insert(2, ("leave-one-out", held_out[name]))
        for protocol, scores in rows:
            print(f"{name:<12}{protocol:<16}{_figures(scores, p.data, rng)}")


def _figures(scores: FloatArray, data: LabelledSet, rng: np.random.Generator) -> str:
    from fareway.evaluation.metrics import bootstrap

    f = bootstrap(scores, data, rng, resamples=200)
    return f"{f.apgr.formatted('.3f'):<24}{f.cpt50.estimate:<12.1%}{f.cpt80.estimate:.1%}"
