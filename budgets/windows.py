"""UTC calendar windows: where the current day, month or all-time window starts and ends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum


class Window(StrEnum):
    """The span a limit applies to."""

    DAY = "day"
    MONTH = "month"
    TOTAL = "total"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def window_bounds(window: Window, now: datetime) -> tuple[datetime, datetime | None]:
    """Start and end of the window that contains `now`; TOTAL never ends (end is None)."""
    now = now.astimezone(UTC)
    if window is Window.DAY:
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return start, start + timedelta(days=1)
    if window is Window.MONTH:
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
        return start, start.replace(year=year, month=month)
    return _EPOCH, None


def window_key(window: Window, now: datetime) -> str:
    """A stable name for the window containing `now`, e.g. `day:2026-11-27`."""
    start, _ = window_bounds(window, now)
    if window is Window.DAY:
        return f"day:{start:%Y-%m-%d}"
    if window is Window.MONTH:
        return f"month:{start:%Y-%m}"
    return "total"
