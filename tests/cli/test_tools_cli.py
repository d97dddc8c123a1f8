"""`--tool` and `--tool-choice` of `fareway chat` and `fareway route`: what a tool file may
hold, and the usage errors for everything else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fareway.cli.main import main

SCHEMA = {
    "type": "object",
    "properties": {"expression": {"type": "string"}},
    "required": ["expression"],
}
CALCULATOR = {"name": "calculator", "description": "Evaluates arithmetic.", "input_schema": SCHEMA}
OPENAI_WEATHER = {
    "type": "function",
    "function": {"name": "weather", "description": "Forecast.", "parameters": SCHEMA},
}


def write(tmp_path: Path, content: object, name: str = "tools.json") -> str:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The one-line error of a command argparse refuses (exit 2)."""
    with pytest.raises(SystemExit) as caught:
        main(list(argv))
    assert caught.value.code == 2
    return " ".join(capsys.readouterr().err.split())


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not JSON: Expecting property name"),
        (CALCULATOR, "expected a non-empty JSON list of tools"),
        ([], "expected a non-empty JSON list of tools"),
        (["calculator"], "tool 0 is not a JSON object"),
        ([CALCULATOR, {"description": "x"}], 'tool 1: "name" must be a non-empty string'),
        ([{"name": "x", "parameters": {}}], "tool 0: unknown field(s) parameters"),
        ([{"type": "function"}], 'tool 0: an OpenAI-style tool is {"type": "function"'),
    ],
)
def test_a_tool_file_that_is_not_a_list_of_tools_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: object, message: str
) -> None:
    path = write(tmp_path, content)

    error = usage_error(capsys, "chat", "hi", "--tool", path)

    assert f"argument --tool: {path}" in error
    assert message in error


def test_a_missing_tool_file_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    error = usage_error(capsys, "route", "hi", "--tool", str(tmp_path / "none.json"))

    assert "argument --tool:" in error
    assert "No such file or directory" in error


def test_a_tool_choice_needs_tools_and_names_one_of_them(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = write(tmp_path, [CALCULATOR])

    assert "--tool-choice needs --tool" in usage_error(capsys, "chat", "hi", "--tool-choice", "any")
    assert (
        "--tool-choice clock: expected auto, any, none or a tool's name (calculator)"
        in usage_error(capsys, "chat", "hi", "--tool", path, "--tool-choice", "clock")
    )
