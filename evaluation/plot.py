"""One PNG per labelled set: the routers' cost-quality curves and the strategies' operating points.

The x axis is the share of calls to the strong model, the y axis the mean quality of the
answers (not PGR: quality keeps the weak and strong models visible as the two horizontal lines
the curves run between, and shows the oracle rising above the strong model where the weak one
sometimes wins). A router with a score (random, length, the oracle, a scoring strategy) is a
curve through its threshold points; a strategy that picks tiers is one marker, to read against
the random router's curve (a marker above it beats chance at the same cost).

matplotlib is an optional dependency (`pip install 'fareway[eval]'`), imported only when a plot
is drawn, so `fareway.evaluation` and every other command load without it. The figure is drawn
on the Agg canvas directly, without pyplot: no display, no global figure state to leak between
plots in one process.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import cycle
from pathlib import Path

from fareway.evaluation.dataset import LabelledSet
from fareway.evaluation.metrics import Curve, OperatingPoint

INSTALL_HINT = "pip install 'fareway[eval]'"
SIZE_INCHES = (7.0, 5.0)
DPI = 120
MARKERS = "osD^v<>Pp*hX"  # one per strategy, in order, so they stay apart in black and white


class PlotUnavailableError(RuntimeError):
    """matplotlib, which drawing needs, is not installed."""


def require_matplotlib() -> None:
    """Raise PlotUnavailableError, with how to install it, when matplotlib is missing.

    Callers check before a long run, so it fails in a second rather than after the routing."""
    try:
        import matplotlib  # noqa: F401 - only whether it imports
    except ImportError as error:
        raise PlotUnavailableError(
            f"plotting needs matplotlib, which is not installed: {INSTALL_HINT}"
        ) from error


def plot(
    path: Path,
    data: LabelledSet,
    curves: Mapping[str, Curve],
    points: Mapping[str, OperatingPoint],
) -> None:
    """Draw `curves` (by router name) and `points` (by strategy name) for `data` into a PNG."""
    require_matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    weak, strong = data.weak_quality().mean(), data.strong_quality().mean()
    figure = Figure(figsize=SIZE_INCHES, dpi=DPI)
    axes = figure.add_subplot()
    axes.axhline(strong, color="black", linestyle="--", linewidth=1, label="strong model")
    axes.axhline(weak, color="grey", linestyle=":", linewidth=1, label="weak model")
    for name, curve in curves.items():
        axes.plot(curve.strong_share, curve.quality, marker=".", label=name)
    for marker, (name, point) in zip(cycle(MARKERS), points.items(), strict=False):
        quality = weak + point.pgr * (strong - weak)
        axes.plot(
            point.strong_share, quality, marker=marker, markersize=9, linestyle="", label=name
        )
    axes.set_xlabel("share of calls to the strong model")
    axes.set_ylabel("mean quality")
    axes.set_xlim(0.0, 1.0)
    axes.set_title(f"{data.benchmark}: {len(data):,} prompts")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize="small")
    FigureCanvasAgg(figure)  # attaches itself to the figure, so savefig draws with Agg
    figure.savefig(path, format="png")
