"""examples/agent_loop.py end to end: its `main` against a real server running the embedded
default configuration (no provider key, so the Claude models are simulated; their pacing is
taken out, so the test does not wait on the clock), traced into memory.

The sim provider calls a tool when the last user turn names it, with the turn's text as each
required string argument, and answers a tool's result with "The result is <result>.": so the
agent's calculator gets the whole question, and the final answer carries what it computed.
"""

from __future__ import annotations

import asyncio
import importlib.util
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from fareway.config.loader import load_config
from fareway.config.schema import FarewayConfig
from fareway.core.clock import ManualClock
from fareway.telemetry import names
from fareway.telemetry.setup import Telemetry

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "agent_loop.py"
STEPS = ["planning", "tool_call_decision", "result_classification", "final_synthesis"]
# The embedded default's `steps` strategy: where each kind of step goes.
TIERS = {
    "planning": "powerful",
    "tool_call_decision": "balanced",
    "result_classification": "fast",
    "final_synthesis": "powerful",
}
STEP_LINE = re.compile(r"(\d+)\. (\w+) → (\S+) \((\w+) tier\): (.+)")
TOOL_LINE = re.compile(r" {3}tool_call calculator (\{.*\}) \(id (\S+)\) → (.+)")


def load_example() -> ModuleType:
    """The example as a module (examples/ is not a package: it is run as a script)."""
    spec = importlib.util.spec_from_file_location("agent_loop", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def unpaced_default() -> FarewayConfig:
    """The embedded default, its simulated models answering at once."""
    config = load_config()
    unpaced = {"ttft_ms": 0, "tokens_per_second": 0}
    models = tuple(
        m.model_copy(update={"sim": m.sim.model_copy(update=unpaced)}) for m in config.models
    )
    return config.model_copy(update={"models": models})


@pytest.fixture
async def run(
    serve: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, list[ReadableSpan]]:
    """The example's exit status, what it printed, and the route spans of its requests."""
    monkeypatch.chdir(tmp_path)  # the default sqlite ledger file goes there
    spans = InMemorySpanExporter()
    tracer = TracerProvider()
    tracer.add_span_processor(SimpleSpanProcessor(spans))
    harness = await serve(
        unpaced_default(),
        clock=ManualClock(),
        env={},  # no ANTHROPIC_API_KEY: simulated; no FAREWAY_DEMO_KEY: the demo key works
        telemetry=Telemetry.from_providers(tracer, MeterProvider(), False),
    )
    main = load_example().main
    # The example blocks on its calls: in a thread, while this loop serves them.
    status = await asyncio.to_thread(main, ["--target", f"127.0.0.1:{harness.running.port}"])
    routes = [s for s in spans.get_finished_spans() if s.name == names.ROUTE_SPAN]
    return status, capsys.readouterr().out, sorted(routes, key=lambda s: s.start_time or 0)


def test_the_steps_run_in_order_each_routed_by_its_step_type(
    run: tuple[int, str, list[ReadableSpan]],
) -> None:
    status, out, _ = run

    steps = [STEP_LINE.fullmatch(line) for line in out.splitlines()]
    shown = [(m[1], m[2], m[4]) for m in steps if m]
    assert status == 0, out
    assert shown == [(str(i), s, TIERS[s]) for i, s in enumerate(STEPS, start=1)], out


def test_the_calculator_is_called_and_its_result_is_the_answer(
    run: tuple[int, str, list[ReadableSpan]],
) -> None:
    _, out, _ = run

    [call] = [m for m in map(TOOL_LINE.fullmatch, out.splitlines()) if m]
    assert "(12 + 30) * 2 / 4" in call[1], "sim passes the question as the expression"
    assert call[3] == "21"
    [answer] = [line for line in out.splitlines() if line.startswith("answer: ")]
    assert "21" in answer


def test_the_trace_has_one_route_span_per_step_with_its_step_type(
    run: tuple[int, str, list[ReadableSpan]],
) -> None:
    _, _, routes = run

    assert [(r.attributes or {}).get(names.STEP_TYPE) for r in routes] == STEPS
    assert [(r.attributes or {}).get(names.TIER) for r in routes] == [TIERS[s] for s in STEPS]
    assert {(r.attributes or {}).get(names.STRATEGY) for r in routes} == {"steps"}


def test_the_calculator_evaluates_only_arithmetic() -> None:
    example = load_example()

    assert example.calculate("what is 0.1 + 0.2?") == "0.3"
    assert example.calculate("-(2 + 3) * 4.") == "-20"
    assert example.calculate("1 / 3") == "0.333333333333"
    for text, error in [
        ("2 ** 8", "not arithmetic: 2 \\*\\* 8"),
        ("__import__('os')", "no arithmetic"),
        ("9" * 201, "longer than 200"),
    ]:
        with pytest.raises(ValueError, match=error):
            example.calculate(text)
    with pytest.raises(ZeroDivisionError):
        example.calculate("1 / (2 - 2)")
