"""The copy of RouteLLM's labels that ships in the package, so `fareway eval` needs no data
folder beside the clone.

It holds exactly what `fareway.evaluation.routellm`'s loaders produce from RouteLLM's original
files, and nothing else: per prompt the benchmark, the text the router sees and both models'
qualities in [0, 1] (GSM8K 1,307, MMLU 14,037 and MT-Bench 72 prompts, decontaminated). The
models' answers, the judge's texts and the dropped prompts are left out; `data/NOTICE` gives
the sources, their licenses and what was changed.

The format is one JSON object a line, `{"benchmark", "prompt", "weak", "strong"}`, compressed
with xz (stdlib `lzma`): JSON writes a float's shortest round-tripping form, so the copy loads
into exactly the `LabelledSet`s the loaders build (a test compares them), and xz brings the
8 MB of text to about 1.5 MB. `tools/pack_routellm.py` rebuilds it from the originals.
"""

from __future__ import annotations

import json
import lzma
from collections.abc import Iterable
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from fareway.evaluation.dataset import LabelledPrompt, LabelledSet

SHIPPED = "routellm.jsonl.xz"
"""The copy's file name, in `fareway.evaluation.data`."""


def load_shipped(name: str) -> LabelledSet:
    """One benchmark ("gsm8k", "mmlu" or "mt-bench") from the shipped copy."""
    sets = _shipped_sets()
    if name not in sets:
        raise ValueError(f"the shipped copy has no benchmark {name!r}; it has: {', '.join(sets)}")
    return sets[name]


def write_copy(sets: Iterable[LabelledSet], path: Path) -> None:
    """Write labelled sets in the shipped copy's format (what `load_shipped` reads)."""
    # preset 9: the smallest file; it is built once per release and read with little memory.
    with lzma.open(path, "wt", encoding="utf-8", preset=9) as handle:
        for data in sets:
            for prompt in data.prompts:
                row = {
                    "benchmark": data.benchmark,
                    "prompt": prompt.text,
                    "weak": prompt.weak,
                    "strong": prompt.strong,
                }
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_copy(source: Traversable) -> dict[str, LabelledSet]:
    """The sets of a file in the shipped copy's format (what `write_copy` writes), by name."""
    prompts: dict[str, list[LabelledPrompt]] = {}
    with source.open("rb") as raw, lzma.open(raw, "rt", encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            prompts.setdefault(row["benchmark"], []).append(
                LabelledPrompt(row["prompt"], row["weak"], row["strong"])
            )
    return {name: LabelledSet.of(name, rows) for name, rows in prompts.items()}


@cache  # the sets are immutable, and decompressing MMLU on every call would cost a second
def _shipped_sets() -> dict[str, LabelledSet]:
    return read_copy(resources.files("fareway.evaluation.data").joinpath(SHIPPED))
