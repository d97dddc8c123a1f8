"""The RouterArena loader: on the real files (skipped, naming the path, where absent), and on
small hand-made files for its pairing, its choice of strong model and its errors."""

import json
from pathlib import Path

import pytest

from fareway.evaluation.routellm import DataMissingError
from fareway.evaluation.routerarena import MODELS, load_routerarena

HAIKU, GEMINI = MODELS


@pytest.fixture(scope="session")
def arena_dir(routing_eval_dir: Path) -> Path:
    if not (routing_eval_dir / "routerarena-sub10").is_dir():
        pytest.skip(f"RouterArena data not found in {routing_eval_dir}")
    return routing_eval_dir


def test_the_809_queries_pair_with_the_published_means_and_costs(arena_dir: Path) -> None:
    data = load_routerarena(arena_dir)
    assert len(data) == 809
    # Published over the 809 queries: claude-3-haiku 0.523 for $0.142, gemini 0.690 for $0.038.
    # Gemini scores higher, so it is the strong model, although it is the cheaper one.
    assert data.weak_quality().mean() == pytest.approx(0.523, abs=0.001)
    assert data.strong_quality().mean() == pytest.approx(0.690, abs=0.001)
    assert data.weak_cost().sum() == pytest.approx(0.142, abs=0.001)
    assert data.strong_cost().sum() == pytest.approx(0.038, abs=0.001)


def write_model(folder: Path, model: str, rows: list[tuple[str, float, float]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps(
            {
                "global_index": index,
                "question": f"question {index}",
                "evaluation_result": {"score": score, "inference_cost": cost},
            }
        )
        for index, score, cost in rows
    ]
    (folder / f"{model}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_rows_pair_by_global_index_and_the_better_model_is_strong(tmp_path: Path) -> None:
    folder = tmp_path / "routerarena-sub10"
    # Haiku is the better model here, and its file lists the queries in another order.
    write_model(folder, HAIKU, [("b_2", 1.0, 0.02), ("a_1", 1.0, 0.01)])
    write_model(folder, GEMINI, [("a_1", 0.0, 0.001), ("b_2", 1.0, 0.002)])
    data = load_routerarena(tmp_path)
    assert data.benchmark == "routerarena"
    by_text = {p.text: p for p in data.prompts}
    assert by_text["question a_1"].weak == 0.0
    assert by_text["question a_1"].strong == 1.0
    assert by_text["question a_1"].weak_cost == 0.001
    assert by_text["question a_1"].strong_cost == 0.01


def test_a_score_outside_zero_to_one_is_clipped(tmp_path: Path) -> None:
    # The real data has one METEOR score of -0.033.
    folder = tmp_path / "routerarena-sub10"
    write_model(folder, HAIKU, [("q_1", -0.033, 0.01), ("q_2", 0.5, 0.01)])
    write_model(folder, GEMINI, [("q_1", 1.0, 0.01), ("q_2", 1.0, 0.01)])
    assert load_routerarena(tmp_path).weak_quality().tolist() == [0.0, 0.5]


def test_files_that_answer_different_queries_are_refused(tmp_path: Path) -> None:
    folder = tmp_path / "routerarena-sub10"
    write_model(folder, HAIKU, [("q_1", 1.0, 0.01)])
    write_model(folder, GEMINI, [("q_2", 1.0, 0.01)])
    with pytest.raises(ValueError, match="different queries"):
        load_routerarena(tmp_path)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataMissingError, match=f"routerarena-sub10/{HAIKU}.jsonl"):
        load_routerarena(tmp_path)
