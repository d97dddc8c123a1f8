"""`fareway eval`'s progress bar: what it shows, how often it redraws, and that it stays quiet
where stderr is not a terminal."""

import io

from fareway.cli.progress import ProgressBar, progress_bar, render


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_bar_shows_count_percent_rate_and_time_left() -> None:
    line = render("  mmlu: rules", 5_000, 14_037, rate=500.0)
    assert line.startswith("  mmlu: rules [#######.............] ")
    assert "5,000/14,037" in line
    assert "35.6%" in line
    assert "500/s" in line
    assert line.endswith("ETA 0:18")  # 9,037 left at 500 a second


def test_hours_show_when_the_wait_is_long_and_nothing_before_the_rate_is_known() -> None:
    assert render("x", 1, 7_201, rate=1.0).endswith("ETA 2:00:00")
    assert render("x", 1, 7_201, rate=None).endswith("1/7,201   0.0%")


def test_redraws_are_throttled_and_the_last_ends_the_line() -> None:
    stream, clock = Terminal(), Clock()
    bar = ProgressBar("run", stream, clock)
    clock.now += 60.0  # a slow warm-up before the first prompt counts for nothing
    bar(1, 1000)
    bar(2, 1000)  # same instant: skipped
    clock.now += 1.0
    bar(101, 1000)
    bar(1000, 1000)  # the last one always draws
    drawn = stream.getvalue().split("\r")[1:]
    assert [line.split()[2] for line in drawn] == ["1/1,000", "101/1,000", "1,000/1,000"]
    assert "100/s ETA 0:09" in drawn[1]
    assert stream.getvalue().endswith("\n")
    assert "\n" not in "".join(drawn[:-1])


def test_no_bar_unless_stderr_is_a_terminal() -> None:
    assert progress_bar("run", io.StringIO()) is None
    assert isinstance(progress_bar("run", Terminal()), ProgressBar)
