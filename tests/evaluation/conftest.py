"""RouteLLM's data: the copy shipped in the package (always there), and the original files in
the routing-eval folder beside the clone (skipped, naming the path, where absent)."""

from pathlib import Path

import pytest

from fareway.evaluation.dataset import LabelledSet
from fareway.evaluation.routellm import BENCHMARKS, default_data_dir, load_benchmark


@pytest.fixture(scope="session")
def routing_eval_dir() -> Path:
    folder = default_data_dir()
    if not (folder / "routellm").is_dir():
        pytest.skip(f"RouteLLM's original files not found at {folder} (a copy beside the clone)")
    return folder


@pytest.fixture(scope="session")
def benchmarks() -> dict[str, LabelledSet]:
    return {name: load_benchmark(name) for name in BENCHMARKS}
