"""A progress bar on stderr for long offline runs (`fareway eval` routing 14,037 MMLU prompts
takes minutes): done/total, percent, rate and time left, redrawn in place.

Pure stdlib, and only on a terminal: piped or captured stderr gets nothing, since carriage
returns make a log unreadable. Redraws are throttled (`INTERVAL_S`), because writing a line per
prompt would cost more than routing some of them; the last update always draws and ends the
line. The rate is measured from the first update, not from the bar's creation, so that the
strategy's warm-up (loading an embedder) does not drag the first estimates. The clock is
injectable so that tests drive it.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from typing import TextIO

INTERVAL_S = 0.1
BAR_WIDTH = 20


class ProgressBar:
    """Called with (done, total) as work advances; draws `label [####....] done/total ...`."""

    def __init__(
        self, label: str, stream: TextIO, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._label = label
        self._stream = stream
        self._clock = clock
        self._first: tuple[float, int] | None = None  # when the first update came, and its count
        self._drawn_at: float | None = None

    def __call__(self, done: int, total: int) -> None:
        now = self._clock()
        if self._first is None:
            self._first = (now, done)
        finished = done >= total
        if not finished and self._drawn_at is not None and now - self._drawn_at < INTERVAL_S:
            return
        self._drawn_at = now
        columns = shutil.get_terminal_size().columns
        started, counted = self._first
        rate = (done - counted) / (now - started) if now > started else None
        line = render(self._label, done, total, rate)[: columns - 1]
        # \r returns to the line's start; the padding wipes what a longer earlier line left.
        self._stream.write("\r" + line.ljust(columns - 1) + ("\n" if finished else ""))
        self._stream.flush()


def progress_bar(label: str, stream: TextIO) -> ProgressBar | None:
    """A bar on `stream` when it is a terminal; None (stay quiet) otherwise."""
    return ProgressBar(label, stream) if stream.isatty() else None


def render(label: str, done: int, total: int, rate: float | None) -> str:
    """The bar's text after `done` of `total` at `rate` a second (None: not known yet)."""
    share = done / total if total else 1.0
    filled = round(share * BAR_WIDTH)
    bar = "#" * filled + "." * (BAR_WIDTH - filled)
    if not rate:
        return f"{label} [{bar}] {done:,}/{total:,} {share:6.1%}"
    left = _duration((total - done) / rate)
    return f"{label} [{bar}] {done:,}/{total:,} {share:6.1%} {rate:,.0f}/s ETA {left}"


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{rest:02d}" if hours else f"{minutes}:{rest:02d}"
