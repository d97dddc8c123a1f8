"""The copy of RouteLLM's labels shipped in the package: the same sets the loaders read from the
original files, with its attribution, and loaded without any data folder."""

import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from fareway.evaluation.bundled import load_shipped, read_copy, write_copy
from fareway.evaluation.dataset import LabelledPrompt, LabelledSet
from fareway.evaluation.routellm import BENCHMARKS, load_benchmark


@pytest.mark.parametrize("name", BENCHMARKS)
def test_the_shipped_copy_is_what_the_loaders_read_from_the_originals(
    routing_eval_dir: Path, name: str
) -> None:
    # Exact equality, floats included: rebuild with tools/pack_routellm.py when this fails.
    assert load_benchmark(name) == load_benchmark(name, routing_eval_dir)


def test_without_a_data_folder_the_benchmarks_come_from_the_package() -> None:
    counts = {name: len(load_benchmark(name)) for name in BENCHMARKS}
    assert counts == {"gsm8k": 1307, "mmlu": 14037, "mt-bench": 72}


def test_the_notice_credits_the_sources_and_carries_the_license() -> None:
    notice = resources.files("fareway.evaluation.data").joinpath("NOTICE").read_text("utf-8")
    assert "lm-sys/RouteLLM" in notice
    assert "0b64fdafe049e596a3f5657c219329f24af24198" in notice
    for credit in ("GSM8K", "MMLU", "MT-Bench", "FastChat", "MIT License"):
        assert credit in notice
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in notice
    assert "END OF TERMS AND CONDITIONS" in notice


def test_a_written_copy_reads_back_equal(tmp_path: Path) -> None:
    sets = [
        LabelledSet.of("mt-bench", [LabelledPrompt("Ünïcode?", 6.5 / 9, 1.0)]),
        LabelledSet.of("gsm8k", [LabelledPrompt("2+2?", 1.0, 1.0), LabelledPrompt("x", 0.0, 1.0)]),
    ]
    write_copy(sets, tmp_path / "copy.jsonl.xz")
    assert read_copy(tmp_path / "copy.jsonl.xz") == {data.benchmark: data for data in sets}


def test_an_unknown_benchmark_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown benchmark 'hellaswag'"):
        load_benchmark("hellaswag")
    with pytest.raises(ValueError, match="no benchmark 'hellaswag'"):
        load_shipped("hellaswag")


def test_importing_the_evaluation_code_does_not_import_matplotlib() -> None:
    # matplotlib is optional (`fareway[eval]`) and slow to import: only drawing may load it.
    code = (
        "import sys, fareway.evaluation.plot, fareway.evaluation.replay, fareway.cli.main; "
        "print('matplotlib' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"
