"""Loader for RouterArena's `sub_10` split: two cheap models' graded answers, with per-query cost.

RouterArena (`RouteWorks/RouterArena` @ 4714a9ad, Apache-2.0) publishes each model's cached
results as `<model>.jsonl`, one row per query: `global_index` (`<dataset>_<n>`), `question` (the
full prompt) and `evaluation_result` with `score` (0 to 1, mostly 0 or 1) and `inference_cost`
(USD). The routing-eval folder holds two models' files under `routerarena-sub10/`, 809 queries
each: `claude-3-haiku-20240307` (mean score 0.523, $0.142 in all) and `gemini-2.0-flash-001`
(0.690, $0.038). Rows are paired by `global_index`; each model's cost is its own
`inference_cost`, so `fareway eval` can account money as well as strong-call shares.

Choices made here:

- The strong model is the one of higher mean score, whichever it is: Gemini. It is also the
  cheaper one, so this pair has no real cost-quality trade-off: the best router sends everything
  to the strong model. It is a sanity case (a router should not pay off here, and random should
  sit near APGR 0.5) and an example of per-prompt costs, not a benchmark to tune on.
- Evaluation only. RouterArena's own rules: a router trained or tuned on it is not comparable
  with its leaderboard. Never train on this set.
- One score lies outside [0, 1] (a METEOR score of -0.033 on NarrativeQA_4102); scores are
  clipped to [0, 1], the range every quality in `fareway.evaluation.dataset` keeps.
- Not shipped in the package: its 809 prompts come from many source data sets, each under its
  own terms, and it serves evaluation only. `load_routerarena` reads it from the data folder
  (`--data`, by default the routing-eval folder beside the repository).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fareway.evaluation.dataset import LabelledPrompt, LabelledSet
from fareway.evaluation.routellm import DataMissingError, default_data_dir

BENCHMARK = "routerarena"
FOLDER = "routerarena-sub10"
MODELS = ("claude-3-haiku-20240307", "gemini-2.0-flash-001")


@dataclass(frozen=True, slots=True)
class _Answer:
    """One model's graded answer to one query."""

    question: str
    score: float
    cost: float


def load_routerarena(data_dir: Path | None = None) -> LabelledSet:
    """The 809 queries both models answered, weak and strong by mean score (module docstring).

    `data_dir` is the routing-eval folder (the one holding `routerarena-sub10/`); by default the
    one beside the repository. A missing file raises `DataMissingError` naming the path.
    """
    root = (data_dir if data_dir is not None else default_data_dir()) / FOLDER
    answers = [_answers(root / f"{model}.jsonl") for model in MODELS]
    if answers[0].keys() != answers[1].keys():
        raise ValueError(f"{root}: the two models answered different queries")
    weak, strong = sorted(answers, key=_mean_score)
    prompts = [_paired(index, weak[index], strong[index]) for index in weak]
    return LabelledSet.of(BENCHMARK, prompts)


def _mean_score(rows: dict[str, _Answer]) -> float:
    return sum(a.score for a in rows.values()) / len(rows)


def _paired(index: str, weak: _Answer, strong: _Answer) -> LabelledPrompt:
    if weak.question != strong.question:
        raise ValueError(f"query {index}: the two models' files hold different questions")
    return LabelledPrompt(weak.question, weak.score, strong.score, weak.cost, strong.cost)


def _answers(path: Path) -> dict[str, _Answer]:
    """The rows of one model's file by `global_index`, in file order."""
    if not path.is_file():
        raise DataMissingError(
            f"RouterArena data not found: {path} (it does not ship with fareway: pass --data, "
            f"the routing-eval folder holding {FOLDER}/)"
        )
    rows: dict[str, _Answer] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            row: dict[str, Any] = json.loads(line)
            index = str(row["global_index"])
            if index in rows:
                raise ValueError(f"{path}:{number}: global_index {index} appears twice")
            result = row["evaluation_result"]
            score = min(max(float(result["score"]), 0.0), 1.0)
            rows[index] = _Answer(str(row["question"]), score, float(result["inference_cost"]))
    return rows
