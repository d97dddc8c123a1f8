"""Budget windows: UTC calendar day, calendar month, and all time."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from fareway.budgets.windows import Window, window_bounds, window_key


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_day_window_runs_from_utc_midnight_to_the_next() -> None:
    start, end = window_bounds(Window.DAY, utc(2026, 3, 14, 15, 9, 26, 535))

    assert (start, end) == (utc(2026, 3, 14), utc(2026, 3, 15))


def test_day_window_at_exact_midnight_starts_there() -> None:
    assert window_bounds(Window.DAY, utc(2026, 3, 14)) == (utc(2026, 3, 14), utc(2026, 3, 15))


def test_last_day_of_month_ends_on_the_first_of_the_next() -> None:
    assert window_bounds(Window.DAY, utc(2026, 4, 30, 23, 59)) == (
        utc(2026, 4, 30),
        utc(2026, 5, 1),
    )


def test_month_window_runs_from_the_first_to_the_next_first() -> None:
    assert window_bounds(Window.MONTH, utc(2026, 2, 17, 8)) == (utc(2026, 2, 1), utc(2026, 3, 1))


def test_leap_february_ends_on_march_first() -> None:
    assert window_bounds(Window.MONTH, utc(2028, 2, 29, 12)) == (utc(2028, 2, 1), utc(2028, 3, 1))


def test_december_rolls_over_into_january_of_the_next_year() -> None:
    now = utc(2026, 12, 31, 23, 59, 59)

    assert window_bounds(Window.MONTH, now) == (utc(2026, 12, 1), utc(2027, 1, 1))
    assert window_bounds(Window.DAY, now) == (utc(2026, 12, 31), utc(2027, 1, 1))
    assert window_key(Window.MONTH, now) == "month:2026-12"
    assert window_key(Window.MONTH, now + timedelta(seconds=1)) == "month:2027-01"


def test_total_window_never_ends() -> None:
    start, end = window_bounds(Window.TOTAL, utc(2026, 6, 1))

    assert end is None
    assert start <= utc(1970, 1, 1)
    assert window_key(Window.TOTAL, utc(2026, 6, 1)) == window_key(Window.TOTAL, utc(2031, 1, 1))


def test_non_utc_input_is_converted_to_utc_first() -> None:
    # 2026-01-31 22:30 in New York (UTC-5) is already 2026-02-01 03:30 UTC.
    new_york = timezone(timedelta(hours=-5))
    now = datetime(2026, 1, 31, 22, 30, tzinfo=new_york)

    day_start, day_end = window_bounds(Window.DAY, now)
    month_start, month_end = window_bounds(Window.MONTH, now)

    assert (day_start, day_end) == (utc(2026, 2, 1), utc(2026, 2, 2))
    assert (month_start, month_end) == (utc(2026, 2, 1), utc(2026, 3, 1))
    assert day_start.utcoffset() == timedelta(0)
    assert window_key(Window.DAY, now) == "day:2026-02-01"
    assert window_key(Window.MONTH, now) == "month:2026-02"


def test_east_of_utc_input_can_fall_on_the_previous_utc_day() -> None:
    # 2026-03-01 05:00 in Tokyo (UTC+9) is 2026-02-28 20:00 UTC: February's window.
    now = datetime(2026, 3, 1, 5, tzinfo=timezone(timedelta(hours=9)))

    assert window_key(Window.DAY, now) == "day:2026-02-28"
    assert window_bounds(Window.MONTH, now) == (utc(2026, 2, 1), utc(2026, 3, 1))


@pytest.mark.parametrize("window", [Window.DAY, Window.MONTH])
def test_keys_differ_between_consecutive_windows(window: Window) -> None:
    now = utc(2026, 5, 10, 12)
    _, end = window_bounds(window, now)
    assert end is not None

    assert window_key(window, end - timedelta(microseconds=1)) == window_key(window, now)
    assert window_key(window, end) != window_key(window, now)
