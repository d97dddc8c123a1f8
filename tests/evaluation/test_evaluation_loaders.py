"""The own-traffic JSONL loader, the data set's checks, and the missing-data error."""

from pathlib import Path

import numpy as np
import pytest

from fareway.evaluation.dataset import LabelledPrompt, LabelledSet
from fareway.evaluation.routellm import DataMissingError, load_gsm8k, load_jsonl


def test_jsonl_reads_flags_scores_and_optional_costs(tmp_path: Path) -> None:
    path = tmp_path / "traffic.jsonl"
    path.write_text(
        '{"prompt": "2+2?", "weak": true, "strong": true}\n'
        "\n"
        '{"prompt": "prove it", "weak": 0.25, "strong": 1, '
        '"weak_cost": 0.001, "strong_cost": 0.1}\n',
        encoding="utf-8",
    )
    data = load_jsonl(path)
    assert data.benchmark == "traffic"
    assert data.texts() == ["2+2?", "prove it"]
    assert data.weak_quality().tolist() == [1.0, 0.25]
    assert data.strong_quality().tolist() == [1.0, 1.0]
    assert not data.has_costs()
    assert data.prompts[1] == LabelledPrompt("prove it", 0.25, 1.0, 0.001, 0.1)


def test_jsonl_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"prompt": "a", "weak": 0, "strong": 1}\n{"prompt": "b", "weak": 2, "strong": 1}\n'
    )
    with pytest.raises(ValueError, match=r"bad\.jsonl:2: weak quality must lie in \[0, 1\]"):
        load_jsonl(path)
    path.write_text('{"prompt": "a", "strong": 1}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:1: 'weak'"):
        load_jsonl(path)


def test_costs_are_arrays_when_every_prompt_has_them() -> None:
    data = LabelledSet.of("c", [LabelledPrompt("a", 0.0, 1.0, 1.0, 20.0)])
    assert data.has_costs()
    assert np.array_equal(data.strong_cost(), [20.0])
    with pytest.raises(ValueError, match="prompt 0 has no weak_cost"):
        LabelledSet.of("c", [LabelledPrompt("a", 0.0, 1.0)]).weak_cost()


def test_an_empty_set_is_refused() -> None:
    with pytest.raises(ValueError, match="no prompts"):
        LabelledSet.of("empty", [])


def test_a_missing_data_folder_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(DataMissingError, match=str(missing)):
        load_gsm8k(missing)
    missing.mkdir()
    with pytest.raises(DataMissingError, match="routellm"):
        load_gsm8k(missing)
