"""The cascade demo end to end (F4): `fareway serve` with the embedded default configuration (no
provider key, so the Claude models are simulated) exporting its traces and metrics over OTLP to
a real receiver, and the `fareway` command as a user runs it.

The simulated claude-haiku-4-5 states a confidence per prompt: 0.36 for SPAM, below the cascade's
0.8, so the request escalates to claude-sonnet-4-6 (0.87, accepted); 0.84 for URGENT, accepted
at once. Each prompt runs in both modes; then `fareway route` explains the ladder. The server is
stopped gracefully (SIGTERM), which flushes every span and metric, before the trace is read.

The CLI runs as a subprocess of the test's event loop (asyncio), so the receiver, in the same
loop, keeps taking exports while it runs.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio

from fareway.telemetry import names
from tests.e2e.servers import CALL_TIMEOUT_S, Server, free_port, wait_until_serving
from tests.telemetry.otlp import OtlpReceiver, Span, children, events, point

pytestmark = pytest.mark.slow  # a server and five CLI processes, simulated pacing

FAREWAY = (sys.executable, "-m", "fareway.cli.main")
SPAM = "classify this: spam or not?"
URGENT = "classify this: urgent or not?"
HAIKU, SONNET, OPUS = "claude-haiku-4-5", "claude-sonnet-4-6", "claude-opus-4-6"
MODES = ("buffered", "speculative")
# The variables of the test run the server must not see: a key would make the models real,
# and the developer's OTEL_* would send the telemetry elsewhere.
NOT_PASSED = ("ANTHROPIC_API_KEY", "FAREWAY_REDIS_URL", "FAREWAY_DEMO_KEY", "FAREWAY_ADMIN_KEY")


@dataclass(frozen=True)
class Ran:
    """One `fareway` command: its arguments and what it printed."""

    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


@dataclass
class Demo:
    """The commands that ran, by name, and the route spans and counters they left."""

    ran: dict[str, Ran] = field(default_factory=dict)
    spans: list[Span] = field(default_factory=list)
    escalations: dict[Any, float] = field(default_factory=dict)
    server_log: str = ""

    def routes(self) -> list[Span]:
        """The route span of each request, in the order the requests came."""
        found = [s for s in self.spans if s.name == names.ROUTE_SPAN]
        return sorted(found, key=lambda s: s.start_time_unix_nano)


CHATS = {
    f"{prompt}-{mode}": ("chat", text, "--strategy", "cascade", "--cascade-mode", mode)
    for mode in MODES
    for prompt, text in (("spam", SPAM), ("urgent", URGENT))
}
COMMANDS = {**CHATS, "route": ("route", SPAM, "--strategy", "cascade")}


def environment(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in NOT_PASSED and not k.startswith("OTEL_")}
    return env | dict(extra)


async def fareway(target: str, *args: str) -> Ran:
    """Run `fareway <args> --target <target>` to its end, without blocking the event loop."""
    process = await asyncio.create_subprocess_exec(
        *FAREWAY,
        *args,
        "--target",
        target,
        env=environment({}),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), CALL_TIMEOUT_S)
    assert process.returncode is not None
    return Ran(args, process.returncode, out.decode(), err.decode())


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def demo(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Demo]:
    workdir = tmp_path_factory.mktemp("cascade-demo")  # the default sqlite ledger goes here
    result = Demo()
    async with OtlpReceiver() as receiver:
        otel = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
            "OTEL_BSP_SCHEDULE_DELAY": "50",
            "OTEL_METRIC_EXPORT_INTERVAL": "50",
            "OTEL_METRICS_EXPORTER": "otlp",
            "OTEL_SERVICE_NAME": "fareway-cascade-demo",
        }
        port = free_port()
        log_path = workdir / "serve.log"
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                *FAREWAY,
                "serve",  # no --config: the embedded default
                "--port",
                str(port),
                cwd=workdir,
                env=environment(otel),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
            )
        server = Server("serve", process, f"127.0.0.1:{port}", log_path)
        try:
            await wait_until_serving(server)
            for name, args in COMMANDS.items():
                result.ran[name] = await fareway(server.target, *args)
            process.send_signal(signal.SIGTERM)  # a graceful stop flushes spans and metrics
            await asyncio.wait_for(process.wait(), CALL_TIMEOUT_S)
        finally:
            await server.kill()
            result.server_log = server.log()
        assert process.returncode == 0, result.server_log
        result.spans = receiver.spans()
        result.escalations = receiver.sums(names.METRIC_ESCALATIONS)
    yield result


def test_every_command_succeeded(demo: Demo) -> None:
    for name, ran in demo.ran.items():
        assert ran.returncode == 0, f"{name}: {ran.stderr}"
    assert "simulated" in demo.server_log


@pytest.mark.parametrize("mode", MODES)
def test_an_unsure_answer_escalates_and_the_stronger_answer_stands(demo: Demo, mode: str) -> None:
    ran = demo.ran[f"spam-{mode}"]
    assert f"[{HAIKU} · fast · cascade]" in ran.stderr, "the cheapest tier answers first"
    assert f"{HAIKU} → {SONNET}" in ran.stderr, "the escalation line names both models"
    assert "0.36" in ran.stderr, "the confidence that was too low"
    assert "confidence 0.87" in ran.stderr, "Done reports the accepted answer's confidence"
    assert ran.stdout.strip(), "the answer is printed"
    assert "confidence:" not in ran.stdout, "the self-assessment tail never reaches the user"
    # Speculative text went out before the verdict, so the line says it is discarded.
    assert ("discard" in ran.stderr) == (mode == "speculative")


@pytest.mark.parametrize("mode", MODES)
def test_a_confident_answer_does_not_escalate(demo: Demo, mode: str) -> None:
    ran = demo.ran[f"urgent-{mode}"]
    assert f"[{HAIKU} · fast · cascade]" in ran.stderr
    assert "→" not in ran.stderr, "no escalation line"
    assert "confidence 0.84" in ran.stderr
    assert ran.stdout.strip()


def test_route_explains_the_ladder_and_the_threshold(demo: Demo) -> None:
    out = demo.ran["route"].stdout
    assert f"model:     {HAIKU} (anthropic, fast tier)" in out
    assert "strategy:  cascade" in out
    [why] = [line for line in out.splitlines() if line.startswith("why:")]
    assert SONNET in why, why
    assert OPUS in why, why
    assert "0.8" in why, why
    assert "cascade.threshold=0.8" in out


def test_the_trace_shows_both_attempts_and_the_escalation(demo: Demo) -> None:
    routes = demo.routes()
    # One route span per request, in the order COMMANDS ran them.
    assert len(routes) == len(COMMANDS)
    for (name, args), route in zip(COMMANDS.items(), routes, strict=True):
        attempts = children(demo.spans, route)
        models = sorted(a.attributes[names.MODEL] for a in attempts)
        escalations = events(route, names.EVENT_ESCALATION)
        assert route.attributes[names.STRATEGY] == "cascade", name
        if name == "route":
            assert (models, escalations) == ([], []), "a dry run calls no model"
            continue
        mode = args[-1]
        assert f"({mode})" in route.attributes[names.REASON], "the request's mode applied"
        if name.startswith("urgent"):
            assert (models, escalations) == ([HAIKU], []), name
            continue
        assert models == [HAIKU, SONNET], name
        assert escalations == [
            {
                names.FROM_MODEL: HAIKU,
                names.TO_MODEL: SONNET,
                names.CONFIDENCE: pytest.approx(0.36),
                names.REASON: escalations[0][names.REASON],
            }
        ], name
        assert "0.36" in escalations[0][names.REASON]


def test_the_escalations_are_counted(demo: Demo) -> None:
    escalated = point(**{names.FROM_MODEL: HAIKU, names.TO_MODEL: SONNET})
    assert demo.escalations == {escalated: len(MODES)}
