"""`fareway chat --tool` and `fareway route --tool` against a real server (the client tests'
threaded harness, its sim models): tool calls printed as they arrive, the stop reason, and the
model without the tools capability excluded."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from fareway.cli.main import main
from fareway.config.schema import FarewayConfig
from fareway.core.clock import ManualClock
from tests.cli.test_tools_cli import CALCULATOR, OPENAI_WEATHER, write
from tests.client.conftest import ServerThread
from tests.server.harness import TENANT_KEY, make_config


def without_tools_on_the_fast_model() -> FarewayConfig:
    config = make_config()
    models = tuple(
        m.model_copy(update={"capabilities": ()}) if m.tier == "fast" else m for m in config.models
    )
    return config.model_copy(update={"models": models})


@pytest.fixture
def target() -> Iterator[str]:
    """A server whose fast model cannot call tools, so that a request with tools skips it."""
    server = ServerThread(without_tools_on_the_fast_model(), ManualClock())
    try:
        yield server.target
    finally:
        server.stop()


def run(capsys: pytest.CaptureFixture[str], target: str, *argv: str) -> tuple[int, str, str]:
    status = main([*argv, "--target", target, "--api-key", TENANT_KEY])
    out, err = capsys.readouterr()
    return status, out, err


def test_route_with_tools_shows_the_model_without_the_capability_excluded(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, target: str
) -> None:
    path = write(tmp_path, [CALCULATOR, OPENAI_WEATHER])

    status, out, _ = run(capsys, target, "route", "classify this: spam or not?", "--tool", path)

    assert status == 0
    assert "model:     fast-1" not in out, "the rules would pick fast-1 without tools"
    [fast] = [line for line in out.splitlines() if line.strip().startswith("fast-1")]
    assert "excluded:" in fast
    assert "tools" in fast


def test_chat_prints_each_tool_call_on_stdout_and_the_tool_use_stop_on_stderr(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, target: str
) -> None:
    path = write(tmp_path, [CALCULATOR])

    status, out, err = run(
        capsys, target, "chat", "what is 2+3?", "--tool", path, "--tool-choice", "calculator"
    )

    assert status == 0
    [line] = out.splitlines()
    printed = re.fullmatch(r"tool_call calculator (\{.*\}) \(id (\S+)\)", line)
    assert printed, line
    assert json.loads(printed[1]) == {"expression": "what is 2+3?"}, "sim's arguments"
    assert "[tool_use · " in err


def test_chat_with_tools_given_as_several_files_and_shapes_may_answer_in_text(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, target: str
) -> None:
    first = write(tmp_path, [CALCULATOR], "calculator.json")
    second = write(tmp_path, [OPENAI_WEATHER], "weather.json")

    status, out, err = run(
        capsys, target, "chat", "hello", "--tool", first, "--tool", second, "--tool-choice", "none"
    )

    assert status == 0
    assert out.strip()
    assert "tool_call" not in out
    assert "[end_turn · " in err
