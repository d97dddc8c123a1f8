"""`budget set` changes only what its flags name (BudgetChange.limits, no server needed)."""

from __future__ import annotations

import pytest

from fareway.cli.budget import BudgetChange, NothingToApply
from fareway.client import BudgetLimit, OnExceed, Window

DAY = BudgetLimit(Window.DAY, 10_000_000, 0.8, OnExceed.REJECT, spent_micros=123)
MONTH = BudgetLimit(Window.MONTH, 100_000_000, 0.8, OnExceed.CHEAPEST_ONLY)
CURRENT = (DAY, MONTH)
# What SetBudget receives: the four settable fields, not the current spend.
DAY_AS_SENT = BudgetLimit(Window.DAY, 10_000_000, 0.8, OnExceed.REJECT)
MONTH_AS_SENT = BudgetLimit(Window.MONTH, 100_000_000, 0.8, OnExceed.CHEAPEST_ONLY)


def test_the_readme_example_keeps_the_month_cap() -> None:
    # fareway budget set --tenant demo --day 5 --soft 0.8
    change = BudgetChange({Window.DAY: 5_000_000}, soft_fraction=0.8)

    assert change.limits(CURRENT) == [
        BudgetLimit(Window.DAY, 5_000_000, 0.8, OnExceed.REJECT),
        BudgetLimit(Window.MONTH, 100_000_000, 0.8, OnExceed.CHEAPEST_ONLY),
    ]


def test_leaving_out_soft_and_on_exceed_keeps_them() -> None:
    change = BudgetChange({Window.MONTH: 50_000_000})

    assert change.limits(CURRENT) == [
        BudgetLimit(Window.DAY, 10_000_000, 0.8, OnExceed.REJECT),
        BudgetLimit(Window.MONTH, 50_000_000, 0.8, OnExceed.CHEAPEST_ONLY),
    ]


def test_soft_applies_only_to_the_windows_named() -> None:
    change = BudgetChange({Window.DAY: 5_000_000}, soft_fraction=0.5)

    [day, month] = change.limits(CURRENT)

    assert (day.soft_fraction, month.soft_fraction) == (0.5, 0.8)


def test_soft_or_on_exceed_without_a_cap_applies_to_every_window() -> None:
    change = BudgetChange({}, soft_fraction=0.9, on_exceed=OnExceed.REJECT)

    assert change.limits(CURRENT) == [
        BudgetLimit(Window.DAY, 10_000_000, 0.9, OnExceed.REJECT),
        BudgetLimit(Window.MONTH, 100_000_000, 0.9, OnExceed.REJECT),
    ]


def test_a_new_window_starts_with_no_soft_fraction_and_rejects() -> None:
    change = BudgetChange({Window.TOTAL: 0})

    assert change.limits(CURRENT)[2] == BudgetLimit(Window.TOTAL, 0, 0.0, OnExceed.REJECT)


def test_clear_removes_one_window() -> None:
    change = BudgetChange({}, clear=frozenset({Window.DAY}))

    assert change.limits(CURRENT) == [MONTH_AS_SENT]


def test_replace_sends_exactly_the_caps_given() -> None:
    change = BudgetChange({Window.DAY: 5_000_000}, replace=True)

    assert change.limits(CURRENT) == [BudgetLimit(Window.DAY, 5_000_000, 0.0, OnExceed.REJECT)]


def test_replace_without_caps_removes_them_all() -> None:
    assert BudgetChange({}, replace=True).limits(CURRENT) == []


def test_only_a_latency_target_sends_the_limits_back_unchanged() -> None:
    assert BudgetChange({}).limits(CURRENT) == [DAY_AS_SENT, MONTH_AS_SENT]


def test_soft_for_a_tenant_without_caps_is_refused() -> None:
    with pytest.raises(NothingToApply, match="no caps for --soft or --on-exceed"):
        BudgetChange({}, soft_fraction=0.5).limits(())
