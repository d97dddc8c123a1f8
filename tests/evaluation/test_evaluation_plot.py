"""The PNG plot of a labelled set's curves and operating points, and the hint when matplotlib
is missing."""

import sys
from pathlib import Path

import numpy as np
import pytest

from fareway.evaluation.dataset import LabelledPrompt, LabelledSet
from fareway.evaluation.metrics import Curve, cost_quality_curve, operating_point
from fareway.evaluation.plot import PlotUnavailableError, plot
from fareway.evaluation.references import length_scores, oracle_scores

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
DATA = LabelledSet.of(
    "hand", [LabelledPrompt("x" * (i + 1), float(i % 3 == 0), float(i % 2 == 0)) for i in range(30)]
)


def curves() -> dict[str, Curve]:
    weak, strong = DATA.weak_quality(), DATA.strong_quality()
    return {
        "length": cost_quality_curve(length_scores(DATA), weak, strong),
        "oracle": cost_quality_curve(oracle_scores(DATA), weak, strong),
    }


def test_the_plot_is_a_png(tmp_path: Path) -> None:
    path = tmp_path / "hand.png"
    points = {"rules": operating_point(np.arange(30) >= 20, DATA)}

    plot(path, DATA, curves(), points)

    content = path.read_bytes()
    assert content.startswith(PNG_SIGNATURE)
    assert len(content) > 10_000  # axes, curves and legend, not an empty canvas


def test_a_missing_matplotlib_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail

    with pytest.raises(PlotUnavailableError, match=r"pip install 'fareway\[eval\]'"):
        plot(tmp_path / "hand.png", DATA, {}, {})
    assert not (tmp_path / "hand.png").exists()
