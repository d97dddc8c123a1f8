"""Bad flag values are usage errors (exit 2) that say what is valid, never tracebacks."""

from __future__ import annotations

import argparse

import pytest

from fareway.cli import arguments
from fareway.cli.main import main

# Nothing listens here; a usage error must come before any connection is tried.
NOWHERE = ("--target", "127.0.0.1:9")


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The last line of the usage error `fareway argv` prints; fails unless it exits 2."""
    with pytest.raises(SystemExit) as caught:
        main([*argv, *NOWHERE])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.splitlines()[-1]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ("chat", "hi", "--max-tokens", "-1"),
            "argument --max-tokens: expected a whole number of 1 or more, got '-1'",
        ),
        (
            ("route", "hi", "--max-tokens", "abc"),
            "argument --max-tokens: expected a whole number of 1 or more, got 'abc'",
        ),
        (
            ("models", "--timeout", "-1"),
            "argument --timeout: expected a number of seconds above 0, got '-1'",
        ),
        (
            ("models", "--timeout", "nan"),
            "argument --timeout: expected a number of seconds above 0, got 'nan'",
        ),
        (
            ("budget", "set", "--tenant", "demo", "--latency-target-ms", "-5"),
            "argument --latency-target-ms: expected a whole number of 0 or more, got '-5'",
        ),
        (
            ("budget", "set", "--tenant", "demo", "--day", "abc"),
            "argument --day: expected an amount of USD, 0 or more (e.g. 5 or 0.25), got 'abc'",
        ),
        (
            ("budget", "set", "--tenant", "demo", "--day", "nan"),
            "argument --day: expected an amount of USD, 0 or more (e.g. 5 or 0.25), got 'nan'",
        ),
        (
            ("budget", "set", "--tenant", "demo", "--month", "inf"),
            "argument --month: expected an amount of USD, 0 or more (e.g. 5 or 0.25), got 'inf'",
        ),
        (
            ("budget", "set", "--tenant", "demo", "--total", "-1"),
            "argument --total: expected an amount of USD, 0 or more (e.g. 5 or 0.25), got '-1'",
        ),
        (
            ("budget", "set", "--tenant", "demo", "--day", "0.0000001"),
            "argument --day: 0.0000001 USD is finer than one micro-USD: give at most 6 decimals",
        ),
        (
            ("budget", "set", "--tenant", "demo", "--soft", "1.5"),
            "argument --soft: expected a fraction from 0 to 1 (0.8 means 80 %), got '1.5'",
        ),
        (("serve", "--port", "70000"), "argument --port: expected a port from 0 to 65535, got"),
        (
            ("chat", "hi", "--cascade-mode", "eager"),
            "argument --cascade-mode: invalid choice: 'eager' (choose from ",
        ),
        (
            ("route", "hi", "--latency-target-ms", "0"),
            "argument --latency-target-ms: expected a whole number of 1 or more, got '0'",
        ),
    ],
)
def test_a_bad_value_is_a_usage_error_saying_what_is_valid(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str
) -> None:
    assert message in usage_error(capsys, *argv)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("budget", "set", "--tenant", "demo"), "nothing to change: give --day, --month"),
        (
            ("budget", "set", "--tenant", "demo", "--day", "5", "--clear", "day"),
            "--day and --clear day: give one or the other",
        ),
        (
            ("budget", "set", "--tenant", "demo", "--replace", "--clear", "month"),
            "--replace already removes the caps not given",
        ),
        (
            ("budget", "set", "--tenant", "demo", "--replace", "--soft", "0.5"),
            "--replace with --soft or --on-exceed needs a cap",
        ),
    ],
)
def test_budget_set_flags_that_change_nothing_or_contradict_are_usage_errors(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str
) -> None:
    assert message in usage_error(capsys, *argv)


@pytest.mark.parametrize(
    ("text", "micros"),
    [
        ("5", 5_000_000),
        ("0", 0),
        ("0.000001", 1),
        ("12.5", 12_500_000),
        ("1e3", 1_000_000_000),
        ("0.10000000", 100_000),  # trailing zeros are not extra precision
        ("9223372036854.775807", 2**63 - 1),
    ],
)
def test_usd_becomes_exact_micros(text: str, micros: int) -> None:
    assert arguments.usd_micros(text) == micros


@pytest.mark.parametrize(
    "text",
    [
        # Past the default Decimal precision, where rounding would make it look whole.
        "5.0000000000000000000000000000001",
        "9223372036854.775808",
        "1e999999",
        "",
        "$5",
    ],
)
def test_usd_that_is_not_whole_micros_or_out_of_range_is_refused(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        arguments.usd_micros(text)
