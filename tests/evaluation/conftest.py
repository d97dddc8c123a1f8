"""RouteLLM's data, loaded once per session; skipped, with the path, where it is absent."""

from pathlib import Path

import pytest

from fareway.evaluation.dataset import LabelledSet
from fareway.evaluation.routellm import BENCHMARKS, default_data_dir, load_benchmark


@pytest.fixture(scope="session")
def routing_eval_dir() -> Path:
    folder = default_data_dir()
    if not (folder / "routellm").is_dir():
        pytest.skip(f"RouteLLM evaluation data not found at {folder} (a copy beside the clone)")
    return folder


@pytest.fixture(scope="session")
def benchmarks(routing_eval_dir: Path) -> dict[str, LabelledSet]:
    return {name: load_benchmark(name, routing_eval_dir) for name in BENCHMARKS}
