"""`--help` of every command explains every flag, with its default and valid values."""

from __future__ import annotations

import argparse
import re
from importlib import metadata

import pytest

from fareway.cli.main import _parser, main


def help_of(capsys: pytest.CaptureFixture[str], *command: str) -> str:
    """`fareway <command> --help`, with its lines joined (argparse wraps them)."""
    with pytest.raises(SystemExit) as caught:
        main([*command, "--help"])
    assert caught.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def leaf_parsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found.extend(leaf_parsers(sub))
    return found or [parser]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--version"])

    assert caught.value.code == 0
    assert capsys.readouterr().out == f"fareway {metadata.version('fareway')}\n"


def test_every_flag_of_every_command_has_help() -> None:
    for parser in leaf_parsers(_parser()):
        for action in parser._actions:
            assert action.help, f"{parser.prog} {action.option_strings or action.dest}"


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (
            ("chat",),
            [
                "--max-tokens N most tokens the answer may have, 1 or more (default: 1024)",
                "(default: the tenant's)",
                "--target HOST:PORT server address (env FAREWAY_TARGET; default: 127.0.0.1:50051)",
                "(default: none)",
                "planning, tool_call_decision, result_classification",
                '--tool FILE tools the model may call: a JSON file with a list of {"name", '
                '"description", "input_schema"} objects, or of OpenAI-style',
                "--tool-choice auto|any|none|NAME with --tool: auto lets the model decide, any "
                "makes it call one of the tools, none forbids calls, NAME makes it call that "
                "tool (default: auto)",
            ],
        ),
        (
            ("route",),
            ["--tier TIER pin a tier, e.g. fast, balanced or powerful (default: the router picks)"],
        ),
        (("health",), ["--timeout SECONDS deadline of each call in seconds, above 0 (default: 5)"]),
        (
            ("budget", "set"),
            [
                "--on-exceed {reject,cheapest_only}",
                "--day USD hard cap per UTC day, in USD with at most 6 decimals; 0 blocks all "
                "spend (default: keep the current cap)",
                "--soft FRACTION",
                "0 to 1, 0 = never (default: keep the current one; with --replace, 0)",
                "--clear WINDOW remove this window's cap: day, month or total (repeatable)",
                "--latency-target-ms MS time-to-first-token target in milliseconds, 0 = none",
            ],
        ),
        (("budget", "get"), ["(default: the key's own)"]),
        (
            ("serve",),
            [
                "--port PORT port to listen on, 0 to 65535, 0 = any free one",
                "50051 in the embedded one",
                "--allow-demo-keys-on-network serve a non-loopback address even though the "
                "public demo keys are accepted; for demos on a trusted network only",
                "--debug",
            ],
        ),
    ],
)
def test_help_shows_defaults_and_valid_values(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    command: tuple[str, ...],
    expected: list[str],
) -> None:
    monkeypatch.delenv("FAREWAY_TARGET", raising=False)

    text = help_of(capsys, *command)

    for phrase in expected:
        assert phrase in text


def test_help_never_prints_the_api_key_from_the_environment(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAREWAY_API_KEY", "sk-secret-value")

    text = help_of(capsys, "models")

    assert "sk-secret-value" not in text
    assert re.search(r"--api-key KEY .*default: the public demo key fareway-demo-key", text)
