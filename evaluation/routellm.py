"""Loaders: RouteLLM's three benchmarks, and a JSONL file of a user's own traffic.

RouteLLM's files (`lm-sys/RouteLLM` @ 0b64fdaf, `routellm/evals/`) are read as its
`benchmarks.py` reads them, with the pair it scores: strong `gpt-4-1106-preview`, weak
`mistralai/Mixtral-8x7B-Instruct-v0.1`.

- GSM8K: `routellm/gsm8k/gsm8k_responses.csv`, one row per question, each model's column a
  correctness flag ("True"/"False").
- MMLU: the 57 `routellm/mmlu/responses/mmlu_<subject>.csv`, the same columns, concatenated in
  file-name order.
- MT-Bench: `routellm/mt_bench/question.jsonl` and `judgements.jsonl`. The router sees the first
  turn only; the quality of a model on a question is the mean of the judge's 1-10 scores over both
  turns (RouteLLM merges both turns' judgements and averages them all; every question has both,
  so that equals the mean over questions of the per-question two-turn mean). It is rescaled to
  [0, 1] as (score - 1) / 9; PGR is a ratio of differences, so the rescaling changes no metric.

Each drops the decontaminated prompts listed in its `contaminated_prompts.jsonl` (`eval_prompt`):
a GSM8K or MMLU row whose prompt is listed, an MT-Bench question whose first or second turn is
listed. That leaves GSM8K 1,307 prompts, MMLU 14,037 and MT-Bench 72.

`load_benchmark(name)` reads the copy of these labels that ships in the package
(`fareway.evaluation.bundled`), so evaluation works on a fresh clone; given a data folder (the
one holding `routellm/`, such as `default_data_dir()`), it and the per-benchmark loaders read
RouteLLM's original files instead. A missing folder or file raises `DataMissingError` naming
the path.

Own traffic (`load_jsonl`): UTF-8, one JSON object per line, blank lines ignored::

    {"prompt": "What is 2+2?", "weak": true, "strong": true}
    {"prompt": "Prove ...", "weak": 0.2, "strong": 0.9, "weak_cost": 0.0001, "strong_cost": 0.012}

- `prompt` (string, required): the text the router sees.
- `weak`, `strong` (required): each model's quality on it, a boolean (correct or not) or a number
  in [0, 1] (a judge score already scaled).
- `weak_cost`, `strong_cost` (optional numbers >= 0): the cost of that model's answer, in any one
  unit used throughout the file.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fareway.evaluation.bundled import load_shipped
from fareway.evaluation.dataset import LabelledPrompt, LabelledSet

STRONG_MODEL = "gpt-4-1106-preview"
WEAK_MODEL = "mistralai/Mixtral-8x7B-Instruct-v0.1"
BENCHMARKS = ("gsm8k", "mmlu", "mt-bench")


class DataMissingError(FileNotFoundError):
    """The evaluation data folder, or a file RouteLLM's layout needs in it, does not exist."""


def default_data_dir() -> Path:
    """`../shared/data/routing-eval` relative to the repository holding this package."""
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "routing-eval"


def load_benchmark(name: str, data_dir: Path | None = None) -> LabelledSet:
    """Load one RouteLLM benchmark by name: "gsm8k", "mmlu" or "mt-bench".

    Without `data_dir`, from the shipped copy; with it, from RouteLLM's files in that folder.
    """
    loaders = {"gsm8k": load_gsm8k, "mmlu": load_mmlu, "mt-bench": load_mt_bench}
    if name not in loaders:
        raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    if data_dir is None:
        return load_shipped(name)
    return loaders[name](data_dir)


def load_gsm8k(data_dir: Path) -> LabelledSet:
    """GSM8K's 1,319 questions less the 12 contaminated: 1,307 prompts."""
    root = _routellm_dir(data_dir) / "gsm8k"
    dropped = _contaminated(root / "contaminated_prompts.jsonl")
    rows = _correctness_rows(_existing(root / "gsm8k_responses.csv"))
    return LabelledSet.of("gsm8k", (p for p in rows if p.text not in dropped))


def load_mmlu(data_dir: Path) -> LabelledSet:
    """MMLU's 57 subjects, 14,042 questions less the 5 contaminated: 14,037 prompts."""
    root = _routellm_dir(data_dir) / "mmlu"
    dropped = _contaminated(root / "contaminated_prompts.jsonl")
    files = sorted(_existing(root / "responses").glob("mmlu_*.csv"))
    if len(files) != 57:
        raise DataMissingError(f"expected 57 mmlu_*.csv files in {root / 'responses'}")
    prompts = [p for f in files for p in _correctness_rows(f) if p.text not in dropped]
    return LabelledSet.of("mmlu", prompts)


def load_mt_bench(data_dir: Path) -> LabelledSet:
    """MT-Bench's 80 questions less the 8 contaminated: 72, routed on the first turn."""
    root = _routellm_dir(data_dir) / "mt_bench"
    dropped = _contaminated(root / "contaminated_prompts.jsonl")
    scores: dict[tuple[int, str], list[float]] = {}
    for row in _jsonl(_existing(root / "judgements.jsonl")):
        scores.setdefault((int(row["question_id"]), str(row["model"])), []).append(
            float(row["score"])
        )
    prompts: list[LabelledPrompt] = []
    for question in _jsonl(_existing(root / "question.jsonl")):
        turns: list[str] = question["turns"]
        if turns[0] in dropped or turns[1] in dropped:
            continue
        qid = int(question["question_id"])
        quality = {m: _judge_quality(scores.get((qid, m), []), qid, m) for m in _PAIR}
        prompts.append(LabelledPrompt(turns[0], quality[WEAK_MODEL], quality[STRONG_MODEL]))
    return LabelledSet.of("mt-bench", prompts)


def load_jsonl(path: Path, benchmark: str | None = None) -> LabelledSet:
    """A user's own labelled traffic in the format of this module's docstring.

    The benchmark name defaults to the file's stem. A malformed line raises ValueError naming the
    file and line number.
    """
    prompts: list[LabelledPrompt] = []
    with _existing(path).open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                prompts.append(_traffic_prompt(json.loads(line)))
            except (ValueError, TypeError, KeyError) as error:
                raise ValueError(f"{path}:{number}: {error}") from error
    return LabelledSet.of(benchmark or path.stem, prompts)


_PAIR = (WEAK_MODEL, STRONG_MODEL)


def _traffic_prompt(row: Any) -> LabelledPrompt:
    if not isinstance(row, dict):
        raise TypeError("each line must be a JSON object")
    prompt = row["prompt"]
    if not isinstance(prompt, str):
        raise TypeError("prompt must be a string")
    return LabelledPrompt(
        prompt,
        _quality(row["weak"], "weak"),
        _quality(row["strong"], "strong"),
        _optional_number(row.get("weak_cost"), "weak_cost"),
        _optional_number(row.get("strong_cost"), "strong_cost"),
    )


def _quality(value: Any, name: str) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        return float(value)
    raise TypeError(f"{name} must be a boolean or a number in [0, 1], got {value!r}")


def _optional_number(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {value!r}")
    return float(value)


def _judge_quality(scores: list[float], question_id: int, model: str) -> float:
    if len(scores) != 2:
        raise ValueError(f"MT-Bench question {question_id}: {len(scores)} judgements for {model}")
    return (sum(scores) / len(scores) - 1.0) / 9.0


def _routellm_dir(data_dir: Path) -> Path:
    if not data_dir.is_dir():
        raise DataMissingError(f"routing evaluation data folder not found: {data_dir}")
    return _existing(data_dir / "routellm")


def _existing(path: Path) -> Path:
    if not path.exists():
        raise DataMissingError(f"routing evaluation data not found: {path}")
    return path


def _contaminated(path: Path) -> frozenset[str]:
    return frozenset(str(row["eval_prompt"]) for row in _jsonl(_existing(path)))


def _jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def _correctness_rows(path: Path) -> Iterator[LabelledPrompt]:
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            yield LabelledPrompt(
                row["prompt"], _flag(row[WEAK_MODEL], path), _flag(row[STRONG_MODEL], path)
            )


def _flag(value: str, path: Path) -> float:
    if value == "True":
        return 1.0
    if value == "False":
        return 0.0
    raise ValueError(f"{path}: expected True or False, got {value!r}")
