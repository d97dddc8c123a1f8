"""Traces of the engine's policies as a collector receives them: cascade escalations and circuit
breaker transitions, exported over OTLP/gRPC by the real server to a real receiver (the shared
cases, fixtures and the hedge live in test_otlp_export.py).

Cascades need answers that state their confidence, which the embedded default configuration's
simulated models give per prompt: a server on that configuration (`cascaded`) serves the
escalation cases. Circuit transitions need a breaker that opens at the first failure: another
server (`test_circuit_transitions_are_exported...`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
import yaml

from fareway import config as fareway_config
from fareway.config.loader import DEFAULT_CONFIG_NAME, parse_config
from fareway.config.schema import CircuitBreakerSettings, FarewayConfig
from fareway.core.clock import ManualClock
from fareway.telemetry import names
from fareway.v1 import router_pb2_grpc
from tests.fakes.anthropic_server import FakeAnthropic
from tests.fakes.http_server import HttpError
from tests.server.harness import (
    make_config,
    user_request,
)
from tests.telemetry.otlp import (
    CLIENT,
    STATUS_UNSET,
    OtlpReceiver,
    events,
    one,
    point,
)
from tests.telemetry.test_otlp_export import ANSWER, Case, Exported, call, start_traced

DEMO_KEY = "fareway-demo-key"
SPAM = "classify this: spam or not?"
URGENT = "classify this: urgent or not?"
HAIKU, SONNET = "claude-haiku-4-5", "claude-sonnet-4-6"
CASCADE_CASES = (
    Case(
        "spam-buffered",
        user_request(SPAM, strategy="cascade", cascade_mode="buffered"),
        rpc="Generate",
        key=DEMO_KEY,
    ),
    Case(
        "spam-speculative",
        user_request(SPAM, strategy="cascade", cascade_mode="speculative"),
        rpc="Generate",
        key=DEMO_KEY,
    ),
    Case("spam-complete", user_request(SPAM, strategy="cascade"), key=DEMO_KEY),
    Case("urgent", user_request(URGENT, strategy="cascade"), rpc="Generate", key=DEMO_KEY),
)
ESCALATED = ["spam-buffered", "spam-speculative", "spam-complete"]


def embedded_default(**changes: object) -> FarewayConfig:
    """The embedded default configuration, its ledger in memory (not a file in the working
    directory), with `changes` to its top-level sections."""
    text = (Path(fareway_config.__file__).parent / DEFAULT_CONFIG_NAME).read_text("utf-8")
    data = yaml.safe_load(text) | {"ledger": {"type": "memory"}} | changes
    return parse_config(yaml.safe_dump(data), "<embedded default, ledger in memory>")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cascaded() -> AsyncIterator[Exported]:
    """Every cascade case through one traced server on the embedded default configuration."""
    async with OtlpReceiver() as receiver:
        running = await start_traced(
            receiver.endpoint, None, metrics=True, config=embedded_default(), clock=ManualClock()
        )
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                stub = router_pb2_grpc.RouterServiceStub(channel)
                outcomes = {case.name: await call(stub, case) for case in CASCADE_CASES}
        finally:
            await running.stop(grace_s=1)
        spans = receiver.spans()
    for outcome in outcomes.values():
        outcome.spans = [s for s in spans if s.trace_id == outcome.trace_id]
    yield Exported(outcomes, spans, receiver)


def test_the_cascade_cases_ran_the_cascade(cascaded: Exported) -> None:
    for case in CASCADE_CASES:
        outcome = cascaded[case.name]
        assert outcome.code == grpc.StatusCode.OK, case.name
        assert outcome.decision is not None
        assert (outcome.decision.strategy, outcome.decision.model) == ("cascade", HAIKU)


@pytest.mark.parametrize("name", ESCALATED)
def test_an_escalation_is_an_event_with_the_models_and_the_confidence_gated(
    cascaded: Exported, name: str
) -> None:
    outcome = cascaded[name]
    [wire] = outcome.escalations
    assert (wire.from_model, wire.to_model) == (HAIKU, SONNET)
    assert wire.confidence == pytest.approx(0.36)
    assert wire.discard_previous == (name == "spam-speculative")
    [escalation] = events(outcome.route, names.EVENT_ESCALATION)
    assert escalation == {
        names.FROM_MODEL: HAIKU,
        names.TO_MODEL: SONNET,
        names.CONFIDENCE: pytest.approx(0.36),
        names.REASON: wire.reason,
    }
    assert "0.36" in wire.reason, wire.reason
    assert "0.8" in wire.reason, wire.reason
    # The hold is raised for the stronger model before the escalation is announced.
    assert [e.name for e in outcome.route.events] == [
        names.EVENT_BUDGET_HOLD,
        names.EVENT_BUDGET_HOLD,
        names.EVENT_ESCALATION,
        names.EVENT_BUDGET_SETTLE,
    ]


@pytest.mark.parametrize("name", ESCALATED)
def test_both_attempts_of_an_escalation_are_spans_under_the_route(
    cascaded: Exported, name: str
) -> None:
    outcome = cascaded[name]
    attempts = outcome.attempts
    assert len(outcome.spans) == 2 + len(attempts)
    assert sorted(a.attributes[names.MODEL] for a in attempts) == [HAIKU, SONNET]
    assert all(a.kind == CLIENT and a.status_code == STATUS_UNSET for a in attempts)
    # Both answered, so both were billed: one usage each, as their spans report.
    usage = {u.model: u for u in outcome.usage}
    assert sorted(usage) == [HAIKU, SONNET]
    for attempt in attempts:
        billed = usage[attempt.attributes[names.MODEL]]
        assert attempt.attributes[names.GEN_AI_USAGE_INPUT_TOKENS] == billed.input_tokens
        assert attempt.attributes[names.GEN_AI_USAGE_OUTPUT_TOKENS] == billed.output_tokens
    assert outcome.total is not None
    [settle] = events(outcome.route, names.EVENT_BUDGET_SETTLE)
    assert settle == {names.AMOUNT: outcome.total.cost_micros}
    assert outcome.total.cost_micros == sum(u.cost_micros for u in outcome.usage)


def test_a_confident_answer_does_not_escalate(cascaded: Exported) -> None:
    outcome = cascaded["urgent"]
    assert outcome.escalations == []
    assert events(outcome.route, names.EVENT_ESCALATION) == []
    [attempt] = outcome.attempts
    assert attempt.attributes[names.MODEL] == HAIKU
    assert [u.model for u in outcome.usage] == [HAIKU]


def test_the_route_span_carries_the_cascade_threshold(cascaded: Exported) -> None:
    for case in CASCADE_CASES:
        route = cascaded[case.name].route
        assert route.attributes[names.STRATEGY] == "cascade"
        assert route.attributes[names.SIGNAL_PREFIX + "cascade.threshold"] == pytest.approx(0.8)
        assert SONNET in route.attributes[names.REASON], "the reason names the ladder"


def test_escalations_are_counted_in_the_exported_metrics(cascaded: Exported) -> None:
    receiver = cascaded.receiver
    escalated = point(**{names.FROM_MODEL: HAIKU, names.TO_MODEL: SONNET})
    assert receiver.sums(names.METRIC_ESCALATIONS) == {escalated: len(ESCALATED)}
    assert receiver.sums(names.METRIC_HEDGES) == {}, "a cascade is never hedged"


# Circuit transitions (F10): a breaker that opens at fast-1's first failure, for 30 s of a
# manual clock; the helpers themselves are tested in test_circuit_telemetry.py.
OPENS_AT_ONCE = CircuitBreakerSettings(failures=1, failure_rate=0, cool_down_s=30)


async def test_circuit_transitions_are_exported_on_the_route_span_and_counted() -> None:
    clock = ManualClock()
    async with OtlpReceiver() as receiver, FakeAnthropic(default=ANSWER) as fake:
        config = make_config(provider="upstream", base_url=fake.base_url).model_copy(
            update={"circuit_breaker": OPENS_AT_ONCE}
        )
        running = await start_traced(receiver.endpoint, fake, True, True, config, clock)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                stub = router_pb2_grpc.RouterServiceStub(channel)
                fake.script(HttpError(529, "overloaded_error", "Overloaded"))
                opened = await call(stub, Case("opens", user_request("classify this: a")))
                clock.advance(30)
                probed = await call(stub, Case("probe", user_request("classify this: b")))
        finally:
            await running.stop(grace_s=1)
        spans = receiver.spans()
    assert (opened.code, probed.code) == (grpc.StatusCode.OK, grpc.StatusCode.OK)
    assert [u.model for u in opened.usage] == ["balanced-1"], "fell back past the failure"
    assert [u.model for u in probed.usage] == ["fast-1"], "the probe answered"
    opened_route = one(spans, trace_id=opened.trace_id, name=names.ROUTE_SPAN)
    probed_route = one(spans, trace_id=probed.trace_id, name=names.ROUTE_SPAN)

    [opening] = events(opened_route, names.EVENT_CIRCUIT)
    assert opening == {
        names.MODEL: "fast-1",
        names.CIRCUIT_FROM: "closed",
        names.CIRCUIT_TO: "open",
        names.CIRCUIT_OPEN_UNTIL: "2026-01-15T12:00:30Z",
        names.ERROR: opened.fallbacks[0].error,
    }
    assert str(opening[names.ERROR]).startswith("overloaded:")
    assert events(probed_route, names.EVENT_CIRCUIT) == [
        {names.MODEL: "fast-1", names.CIRCUIT_FROM: "open", names.CIRCUIT_TO: "half_open"},
        {names.MODEL: "fast-1", names.CIRCUIT_FROM: "half_open", names.CIRCUIT_TO: "closed"},
    ]

    def moved(before: str, after: str) -> frozenset[tuple[str, object]]:
        return point(**{names.MODEL: "fast-1", names.CIRCUIT_FROM: before, names.CIRCUIT_TO: after})

    assert receiver.sums(names.METRIC_CIRCUIT_TRANSITIONS) == {
        moved("closed", "open"): 1,
        moved("open", "half_open"): 1,
        moved("half_open", "closed"): 1,
    }
