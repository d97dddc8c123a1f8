"""The `fareway` command end to end: `serve` with the embedded default, then chat, route, models."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

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
    result = fareway(target, "chat", "classify this: spam or not?")

    assert result.returncode == 0, result.stderr
    assert "claude-haiku-4-5 · fast · rules" in result.stderr
    assert result.stdout.strip(), "the answer is printed"
    assert "end_turn" in result.stderr


def test_chat_sends_analysis_to_the_powerful_tier(target: str) -> None:
    result = fareway(target, "chat", "analyze the strategic implications of a price cut")

    assert result.returncode == 0, result.stderr
    assert "claude-opus-4-6 · powerful · rules" in result.stderr


def test_route_explains_the_decision(target: str) -> None:
    fast = fareway(target, "route", "classify this: spam or not?")
    powerful = fareway(target, "route", "analyze the strategic implications of a price cut")

    assert "model:     claude-haiku-4-5 (anthropic, fast tier)" in fast.stdout
    assert "rule 'simple-classification' matched" in fast.stdout
    assert "model:     claude-opus-4-6 (anthropic, powerful tier)" in powerful.stdout
    assert "rule 'complex-reasoning' matched (keyword 'analyze')" in powerful.stdout
    assert "claude-sonnet-4-6" in powerful.stdout, "every candidate is listed"


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


def test_budget_get_shows_the_callers_caps(target: str) -> None:
    result = fareway(target, "budget", "get")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("tenant demo\n")
    assert "day    cap $10.00" in result.stdout
    assert "month  cap $100.00" in result.stdout
    assert "latency target 2000 ms" in result.stdout


def test_budget_set_needs_the_admin_key_and_replaces_the_caps(target: str) -> None:
    args = ("budget", "set", "--tenant", "demo", "--day", "12.5", "--soft", "0.5")
    refused = fareway(target, *args)
    accepted = fareway(target, *args, "--api-key", "fareway-admin-key")

    assert refused.returncode == 1
    assert "error: PERMISSION_DENIED: SetBudget needs an admin key" in refused.stderr
    assert accepted.returncode == 0, accepted.stderr
    assert "day    cap $12.50" in accepted.stdout
    assert "soft 50%, on exceed reject" in accepted.stdout
    assert "month" not in accepted.stdout, "set replaces the limits"
