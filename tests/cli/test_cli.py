"""The `fareway` command end to end: `serve` with the embedded default, then chat, route, models."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from fareway.client import BudgetLimit, Client, OnExceed, Window

FAREWAY = [sys.executable, "-m", "fareway.cli.main"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_serving(target: str, process: subprocess.Popen[str]) -> None:
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for _ in range(100):
            if process.poll() is not None:
                pytest.fail(f"server exited: {process.communicate()[1]}")
            try:
                stub.Check(health_pb2.HealthCheckRequest(), timeout=0.5)
                return
            except grpc.RpcError:
                time.sleep(0.1)
    pytest.fail("server did not become healthy")


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`fareway serve` with the embedded default configuration and no provider key."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_API_KEY"}
    process = subprocess.Popen(
        [*FAREWAY, "serve", "--port", str(port)],
        env=env,
        cwd=tmp_path_factory.mktemp("serve"),  # the default sqlite ledger file goes there
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    address = f"127.0.0.1:{port}"
    try:
        wait_until_serving(address, process)
        yield address
    finally:
        process.terminate()
        _, log = process.communicate(timeout=30)
    assert process.returncode == 0, log
    assert "simulated" in log, "the log says the Claude models are simulated without a key"
    assert "demo key" in log, "the log warns that the demo keys are accepted"


def fareway(target: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*FAREWAY, *args, "--target", target],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_chat_streams_a_classification_from_the_fast_tier(target: str) -> None:
    result = fareway(target, "chat", "--strategy", "semantic", "classify this: spam or not?")

    assert result.returncode == 0, result.stderr
    assert "claude-haiku-4-5 · fast · semantic" in result.stderr
    assert result.stdout.strip(), "the answer is printed"
    assert "end_turn" in result.stderr


def test_chat_sends_analysis_to_the_powerful_tier(target: str) -> None:
    result = fareway(
        target,
        "chat",
        "--strategy",
        "semantic",
        "analyze the strategic implications of a price cut",
    )

    assert result.returncode == 0, result.stderr
    assert "claude-opus-4-6 · powerful · semantic" in result.stderr


def test_route_explains_the_decision(target: str) -> None:
    fast = fareway(target, "route", "--strategy", "semantic", "classify this: spam or not?")
    powerful = fareway(
        target,
        "route",
        "--strategy",
        "semantic",
        "analyze the strategic implications of a price cut",
    )

    assert "model:     claude-haiku-4-5 (anthropic, fast tier)" in fast.stdout
    assert "semantic route 'classification'" in fast.stdout
    assert "model:     claude-opus-4-6 (anthropic, powerful tier)" in powerful.stdout
    assert "semantic route 'analysis'" in powerful.stdout
    assert "claude-sonnet-4-6" in powerful.stdout, "every candidate is listed"


def test_route_with_the_cascade_strategy_explains_the_ladder(target: str) -> None:
    result = fareway(target, "route", "is this spam?", "--strategy", "cascade")

    assert result.returncode == 0, result.stderr
    assert "model:     claude-haiku-4-5 (anthropic, fast tier)" in result.stdout
    assert "strategy:  cascade" in result.stdout
    assert (
        "why:       the cheapest eligible tier answers first: claude-haiku-4-5 (fast); below "
        "confidence 0.8 (self-assessment) it escalates to claude-sonnet-4-6, then "
        "claude-opus-4-6 (buffered)\n"
    ) in result.stdout
    assert "signals:   cascade.threshold=0.8\n" in result.stdout


def test_route_takes_the_cascade_mode(target: str) -> None:
    result = fareway(
        target, "route", "is this spam?", "--strategy", "cascade", "--cascade-mode", "speculative"
    )

    assert result.returncode == 0, result.stderr
    assert "claude-opus-4-6 (speculative)\n" in result.stdout


def test_models_lists_the_simulated_claude_tiers(target: str) -> None:
    result = fareway(target, "models")

    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines[1:]] == [
        "claude-haiku-4-5",
        "claude-sonnet-4-6",
        "claude-opus-4-6",
    ]
    assert all("simulated" in line for line in lines[1:])


def test_errors_print_the_code_and_exit_non_zero(target: str) -> None:
    result = fareway(target, "route", "hi", "--api-key", "wrong")
    assert result.returncode == 1
    assert "error: UNAUTHENTICATED: unknown API key" in result.stderr


def test_health_reports_serving(target: str) -> None:
    result = fareway(target, "health")
    assert (result.returncode, result.stdout.strip()) == (0, "SERVING")


def test_health_fails_when_nothing_listens() -> None:
    result = fareway(f"127.0.0.1:{free_port()}", "health", "--timeout", "1")
    assert result.returncode == 1


def test_invalid_configuration_names_line_and_field(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("server:\n  port: nope\n")
    result = subprocess.run(
        [*FAREWAY, "serve", "--config", str(config)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert f"{config}:2: server.port:" in result.stderr


@pytest.fixture
def demo_budget(target: str) -> Iterator[str]:
    """The server, with the demo tenant's budget as the embedded default seeds it before and
    after the test, so that what one test sets never leaks into another."""
    reset_demo_budget(target)
    yield target
    reset_demo_budget(target)


def reset_demo_budget(target: str) -> None:
    with Client(target, ADMIN_KEY, timeout_s=30) as client:
        client.set_budget("demo", DEFAULT_DEMO_LIMITS, latency_target_ms=2000)


ADMIN_KEY = "fareway-admin-key"
DEFAULT_DEMO_LIMITS = [
    BudgetLimit(Window.DAY, 10_000_000, 0.8, OnExceed.REJECT),
    BudgetLimit(Window.MONTH, 100_000_000, 0.8, OnExceed.REJECT),
]


def test_budget_get_shows_the_callers_caps(demo_budget: str) -> None:
    result = fareway(demo_budget, "budget", "get")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("tenant demo\n")
    assert "day    cap $10.00" in result.stdout
    assert "month  cap $100.00" in result.stdout
    assert "latency target 2000 ms" in result.stdout


def test_budget_set_needs_the_admin_key(demo_budget: str) -> None:
    result = fareway(demo_budget, "budget", "set", "--tenant", "demo", "--day", "12.5")

    assert result.returncode == 1
    assert result.stderr == "fareway: error: PERMISSION_DENIED: SetBudget needs an admin key\n"


def test_the_readme_budget_example_changes_the_day_cap_and_keeps_the_month_cap(
    demo_budget: str,
) -> None:
    # Word for word from README.md, "Use it from the command line".
    result = fareway(
        demo_budget,
        "budget",
        "set",
        "--tenant",
        "demo",
        "--day",
        "5",
        "--soft",
        "0.8",
        "--api-key",
        ADMIN_KEY,
    )

    assert result.returncode == 0, result.stderr
    assert "day    cap $5.00" in result.stdout
    assert "month  cap $100.00" in result.stdout, "the month cap is kept"
    assert "latency target 2000 ms" in result.stdout, "the latency target is kept"


def test_budget_set_without_soft_keeps_the_soft_fraction_and_on_exceed(demo_budget: str) -> None:
    result = fareway(
        demo_budget, "budget", "set", "--tenant", "demo", "--month", "50", "--api-key", ADMIN_KEY
    )

    assert result.returncode == 0, result.stderr
    [day, month] = [line for line in result.stdout.splitlines() if " cap $" in line]
    assert day.startswith("  day    cap $10.00")
    assert "soft 80%, on exceed reject" in day
    assert month.startswith("  month  cap $50.00")
    assert "soft 80%, on exceed reject" in month


def test_budget_set_soft_alone_applies_to_every_window(demo_budget: str) -> None:
    result = fareway(
        demo_budget,
        "budget",
        "set",
        "--tenant",
        "demo",
        "--soft",
        "0.5",
        "--on-exceed",
        "cheapest_only",
        "--api-key",
        ADMIN_KEY,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.count("soft 50%, on exceed cheapest_only") == 2


def test_budget_set_clear_removes_one_window(demo_budget: str) -> None:
    result = fareway(
        demo_budget, "budget", "set", "--tenant", "demo", "--clear", "day", "--api-key", ADMIN_KEY
    )

    assert result.returncode == 0, result.stderr
    assert "day " not in result.stdout
    assert "month  cap $100.00" in result.stdout


def test_budget_set_replace_sends_exactly_the_caps_given(demo_budget: str) -> None:
    result = fareway(
        demo_budget,
        "budget",
        "set",
        "--tenant",
        "demo",
        "--replace",
        "--total",
        "0.000001",
        "--api-key",
        ADMIN_KEY,
    )

    assert result.returncode == 0, result.stderr
    assert "total  cap $0.000001" in result.stdout, "the cap is exact, not rounded"
    assert "day " not in result.stdout
    assert "month" not in result.stdout
    assert "soft 0%, on exceed reject" in result.stdout


# -- failures end in one line --------------------------------------------------------------------


@pytest.mark.parametrize(
    "command", [("models",), ("chat", "hi"), ("budget", "get"), ("health", "--timeout", "5")]
)
def test_a_server_that_is_down_is_one_line(command: tuple[str, ...]) -> None:
    result = fareway(f"127.0.0.1:{free_port()}", *command)

    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("fareway: error: UNAVAILABLE: ")


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback() -> None:
    # A prompt that is not valid UTF-8 cannot be sent: nothing in fareway expects this.
    argv = [*FAREWAY, "route", "bad \udcff byte"]  # passed to the process as the byte 0xff
    nowhere = ["--target", f"127.0.0.1:{free_port()}"]

    quiet = subprocess.run([*argv, *nowhere], capture_output=True, text=True, timeout=60)
    debug = subprocess.run([*argv, *nowhere, "--debug"], capture_output=True, text=True, timeout=60)

    assert quiet.returncode == 1
    assert quiet.stderr.splitlines() == [
        "fareway: error: UnicodeEncodeError: 'utf-8' codec can't encode character '\\udcff' "
        "in position 4: surrogates not allowed (run with --debug for the traceback)"
    ]
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr
    assert debug.stderr.splitlines()[-1] == quiet.stderr.splitlines()[-1]


# -- a closed pipe ends the output quietly -------------------------------------------------------


def into_closed_pipe(target: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `fareway args` with stdout a pipe whose reader has already gone, as `| head -1`
    does once it has its line: every write fails, deterministically."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            [*FAREWAY, *args, "--target", target],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write)


@pytest.mark.parametrize(
    "command",
    [("budget", "get"), ("models",), ("route", "hi"), ("chat", "classify this: spam or not?")],
)
def test_a_closed_pipe_ends_quietly(target: str, command: tuple[str, ...]) -> None:
    result = into_closed_pipe(target, *command)

    assert result.returncode == 141
    assert "Traceback" not in result.stderr
    assert "Exception ignored" not in result.stderr
    assert "BrokenPipe" not in result.stderr
    assert "error" not in result.stderr


def test_piping_into_head_prints_one_line_and_nothing_else(target: str) -> None:
    result = subprocess.run(
        f"{shlex.join([*FAREWAY, 'models', '--target', target])} | head -1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.stdout.split() == [
        "model",
        "tier",
        "provider",
        "$/Mtok",
        "in",
        "$/Mtok",
        "out",
        "notes",
    ]
    assert result.stderr == ""
