"""Traces as a collector receives them (F22, F23): the real server, configured only by OTEL_*
variables, exports over OTLP/gRPC to a real receiver on loopback, and the tests read the spans.

One server (its models behind the loopback Anthropic fake) serves every case in CASES once per
module: each routing strategy, a dry-run Route, a fallback, a hedge, and refusals. Each case
carries its own caller `traceparent` (except one that starts a fresh trace), so its spans are
found by trace id. The runtime is then shut down, which must flush every span to the receiver.

To cover a new behaviour: add a Case that provokes it (a `script` of fake answers), then a test
that reads its event with `events(route, name)`. The receiver takes metrics too, so the counters
behind the events are read as exported (`receiver.sums(name)`). Escalations and circuit
transitions, which need servers of their own, are in test_otlp_export_policies.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Literal

import grpc
import pytest
import pytest_asyncio

from fareway.budgets.ledger import Limit
from fareway.budgets.windows import Window
from fareway.config.schema import FarewayConfig
from fareway.core.clock import Clock, SystemClock
from fareway.server.app import RunningServer, start_server
from fareway.server.runtime import build_runtime
from fareway.telemetry import names, setup
from fareway.telemetry.setup import configure_telemetry
from fareway.v1 import router_pb2, router_pb2_grpc
from tests.fakes.anthropic_server import Answer, Behaviour, FakeAnthropic
from tests.fakes.http_server import HttpError
from tests.server.harness import (
    ENV,
    OTHER_KEY,
    TENANT_KEY,
    make_config,
    metadata,
    user_request,
)
from tests.telemetry.otlp import (
    CLIENT,
    INTERNAL,
    SERVER,
    STATUS_ERROR,
    STATUS_UNSET,
    OtlpReceiver,
    Span,
    children,
    events,
    one,
    point,
    text_values,
)

# Neither may ever reach a collector unless record_content is on.
PROMPT_MARKER = "zebra-prompt-7f3c"
ANSWER_MARKER = "okapi-answer-91d2"
ANSWER = Answer(chunks=(ANSWER_MARKER, " and more"), input_tokens=40, output_tokens=9)
SERVICE_NAME = "fareway-under-test"
RESPONSE_MODEL = "claude-fake"  # what the fake says answered; the request names up-*
HEDGE_AFTER_MS = 50  # the hedge case's latency target: the first model's first byte is later
# Held until the client hangs up (the fake's pause wakes at the disconnect): the hedge's loser.
LATE_ANSWER = dataclasses.replace(ANSWER, first_byte_delay_s=600)


@dataclass(frozen=True)
class Case:
    """One call to the traced server, and what provokes its behaviour."""

    name: str
    request: router_pb2.GenerateRequest
    rpc: Literal["Generate", "Complete", "Route"] = "Complete"
    key: str = TENANT_KEY
    script: tuple[Behaviour, ...] = ()  # the fake's answers, in order; then ANSWER
    traced: bool = True  # send a caller traceparent
    refused: grpc.StatusCode | None = None


CASES = (
    Case("rules", user_request(f"classify this: {PROMPT_MARKER}?"), rpc="Generate", traced=False),
    Case("steps", user_request(f"plan {PROMPT_MARKER}", step_type="planning")),
    Case("cost", user_request(f"Tell me about {PROMPT_MARKER}", 500, strategy="cost")),
    Case("pin-model", user_request(f"hello {PROMPT_MARKER}", model="balanced-1")),
    Case("pin-tier", user_request(f"hello {PROMPT_MARKER}", tier="fast"), rpc="Generate"),
    Case("route-only", user_request(f"analyze {PROMPT_MARKER}"), rpc="Route"),
    Case(
        "fallback",
        user_request(f"classify this: {PROMPT_MARKER}"),
        rpc="Generate",
        script=(HttpError(529, "overloaded_error", "Overloaded"), ANSWER),
    ),
    Case(
        "hedge",
        user_request(f"classify this: {PROMPT_MARKER}!", latency_target_ms=HEDGE_AFTER_MS),
        rpc="Generate",
        script=(LATE_ANSWER, ANSWER),  # fast-1 never answers; balanced-1, the hedge, does
    ),
    Case(
        "invalid",
        user_request(f"hi {PROMPT_MARKER}", step_type="daydreaming"),
        refused=grpc.StatusCode.INVALID_ARGUMENT,
    ),
    Case(
        "budget",
        user_request(f"hi {PROMPT_MARKER}"),
        key=OTHER_KEY,  # its day cap is set to 1 micro-USD below
        refused=grpc.StatusCode.RESOURCE_EXHAUSTED,
    ),
)
BY_NAME = {case.name: case for case in CASES}
GENERATED = [c.name for c in CASES if c.rpc != "Route" and c.refused is None]


@dataclass
class Outcome:
    """What one case's caller saw, and the spans of its trace."""

    case: Case
    trace_id: str  # the caller's, or (untraced) the one RouteDecision reported
    parent_span_id: str  # the caller's span, "" when untraced
    decision: router_pb2.RouteDecision | None = None
    usage: list[router_pb2.Usage] = field(default_factory=list)
    total: router_pb2.Usage | None = None
    fallbacks: list[router_pb2.Fallback] = field(default_factory=list)
    hedges: list[router_pb2.Hedge] = field(default_factory=list)
    escalations: list[router_pb2.Escalation] = field(default_factory=list)
    code: grpc.StatusCode = grpc.StatusCode.OK
    spans: list[Span] = field(default_factory=list)

    @property
    def server(self) -> Span:
        return one(self.spans, kind=SERVER)

    @property
    def route(self) -> Span:
        return one(self.spans, name=names.ROUTE_SPAN)

    @property
    def attempts(self) -> list[Span]:
        return children(self.spans, self.route)


def otel_env(endpoint: str, metrics: bool = False) -> dict[str, str]:
    """The OTEL_* variables a deployment sets to export to `endpoint` over gRPC; metrics only
    when asked."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_BSP_SCHEDULE_DELAY": "50",  # milliseconds: spans leave while the cases run
        "OTEL_METRIC_EXPORT_INTERVAL": "50",
        "OTEL_METRICS_EXPORTER": "otlp" if metrics else "none",
        "OTEL_SERVICE_NAME": SERVICE_NAME,
    }


async def start_traced(
    endpoint: str,
    fake: FakeAnthropic | None,
    record_content: bool = False,
    metrics: bool = False,
    config: FarewayConfig | None = None,
    clock: Clock | None = None,
) -> RunningServer:
    """The real server, its telemetry built from OTEL_* variables in the process environment
    (where the OpenTelemetry SDK reads the endpoint); `config` (default: the test catalog with
    its models behind `fake`)."""
    env = otel_env(endpoint, metrics)
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("OTEL_")]:
            patch.delenv(name)  # the developer's own, which the SDK would read
        for name, value in env.items():
            patch.setenv(name, value)
        telemetry = configure_telemetry(os.environ, record_content)
    if config is None:
        assert fake is not None, "the test catalog's models are behind the fake"
        config = make_config(provider="upstream", base_url=fake.base_url)
    runtime = await build_runtime(
        config, clock or SystemClock(), {**ENV, **env}, telemetry=telemetry
    )
    return await start_server(runtime, "127.0.0.1", 0)


async def call(stub: router_pb2_grpc.RouterServiceStub, case: Case) -> Outcome:
    """Run one case as a client would, with its own caller trace when `traced`."""
    trace_id, parent = (secrets.token_hex(16), secrets.token_hex(8)) if case.traced else ("", "")
    sent = metadata(case.key)
    if case.traced:
        sent += (("traceparent", f"00-{trace_id}-{parent}-01"),)
    outcome = Outcome(case, trace_id, parent)
    try:
        if case.rpc == "Route":
            outcome.decision = await stub.Route(case.request, metadata=sent)
        elif case.rpc == "Complete":
            reply = await stub.Complete(case.request, metadata=sent)
            outcome.decision, outcome.total = reply.decision, reply.total
            outcome.usage, outcome.fallbacks = list(reply.usage), list(reply.fallbacks)
            outcome.hedges, outcome.escalations = list(reply.hedges), list(reply.escalations)
        else:
            async for event in stub.Generate(case.request, metadata=sent):
                kind = event.WhichOneof("event")
                if kind == "decision":
                    outcome.decision = event.decision
                elif kind == "usage":
                    outcome.usage.append(event.usage)
                elif kind == "fallback":
                    outcome.fallbacks.append(event.fallback)
                elif kind == "hedge":
                    outcome.hedges.append(event.hedge)
                elif kind == "escalation":
                    outcome.escalations.append(event.escalation)
                elif kind == "done":
                    outcome.total = event.done.total
    except grpc.aio.AioRpcError as error:
        outcome.code = error.code()
    if not case.traced and outcome.decision is not None:
        outcome.trace_id = outcome.decision.trace_id
    return outcome


@dataclass
class Exported:
    """Every case's outcome by name, and every span and counter the receiver got."""

    outcomes: dict[str, Outcome]
    spans: list[Span]
    receiver: OtlpReceiver

    def __getitem__(self, name: str) -> Outcome:
        return self.outcomes[name]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def exported() -> AsyncIterator[Exported]:
    """Every case through one traced server, the server shut down, the spans received."""
    async with OtlpReceiver() as receiver, FakeAnthropic(default=ANSWER) as fake:
        running = await start_traced(receiver.endpoint, fake, metrics=True)
        try:
            await running.runtime.ledger.configure("other", [Limit(Window.DAY, 1)])
            async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                stub = router_pb2_grpc.RouterServiceStub(channel)
                outcomes = {}
                for case in CASES:
                    fake.script(*case.script)
                    outcomes[case.name] = await call(stub, case)
        finally:
            await running.stop(grace_s=1)  # shuts the tracer provider down: the final flush
        spans = receiver.spans()
    for outcome in outcomes.values():
        outcome.spans = [s for s in spans if s.trace_id == outcome.trace_id]
    yield Exported(outcomes, spans, receiver)


def test_every_case_behaved_as_scripted(exported: Exported) -> None:
    """The premise of the other tests: each strategy ran, refusals were refused."""
    for case in CASES:
        assert exported[case.name].code == (case.refused or grpc.StatusCode.OK), case.name
    decided = [o.decision for o in exported.outcomes.values() if o.decision is not None]
    strategies = {decision.strategy for decision in decided}
    assert strategies == {"rules", "steps", "cost", "pin"}
    assert len(exported["fallback"].fallbacks) == 1
    assert len(exported["hedge"].hedges) == 1
    assert all(not o.hedges for o in exported.outcomes.values() if o.case.name != "hedge")


def test_shutdown_flushes_one_trace_per_request(exported: Exported) -> None:
    outcomes = exported.outcomes.values()
    assert {s.trace_id for s in exported.spans} == {o.trace_id for o in outcomes}
    assert all(o.spans for o in outcomes)
    assert sum(len(o.spans) for o in outcomes) == len(exported.spans)


@pytest.mark.parametrize("name", [c.name for c in CASES if c.traced])
def test_the_callers_trace_is_continued(exported: Exported, name: str) -> None:
    outcome = exported[name]
    assert outcome.server.trace_id == outcome.trace_id
    assert outcome.server.parent_span_id == outcome.parent_span_id
    if outcome.decision is not None:
        assert outcome.decision.trace_id == outcome.trace_id


def test_a_call_without_traceparent_starts_a_trace_the_decision_names(
    exported: Exported,
) -> None:
    outcome = exported["rules"]
    assert outcome.decision is not None
    assert re.fullmatch("[0-9a-f]{32}", outcome.decision.trace_id)
    assert outcome.server.trace_id == outcome.decision.trace_id
    assert outcome.server.parent_span_id == ""


@pytest.mark.parametrize("name", [c.name for c in CASES])
def test_span_tree(exported: Exported, name: str) -> None:
    outcome = exported[name]
    server = outcome.server
    assert server.name == f"fareway.v1.RouterService/{outcome.case.rpc}"
    assert server.attributes[names.RPC_SYSTEM] == "grpc"
    assert server.attributes[names.RPC_SERVICE] == "fareway.v1.RouterService"
    assert server.attributes[names.RPC_METHOD] == outcome.case.rpc
    assert server.attributes[names.RPC_GRPC_STATUS_CODE] == outcome.code.value[0]
    route = outcome.route
    assert (route.kind, route.parent_span_id) == (INTERNAL, server.span_id)
    assert children(outcome.spans, server) == [route]
    attempts = outcome.attempts
    assert all(a.kind == CLIENT for a in attempts)
    assert len(outcome.spans) == 2 + len(attempts), "nothing outside the tree"
    expected_attempts = {"fallback": 2, "hedge": 2, "route-only": 0, "invalid": 0, "budget": 0}
    assert len(attempts) == expected_attempts.get(name, 1)


@pytest.mark.parametrize("name", GENERATED)
def test_attempt_spans_follow_the_genai_conventions(exported: Exported, name: str) -> None:
    outcome = exported[name]
    [usage] = [u for u in outcome.usage if u.model == outcome.usage[-1].model]
    # The one that answered (the spans arrive as they end: a hedge's loser may end last).
    [attempt] = [a for a in outcome.attempts if a.attributes[names.MODEL] == usage.model]
    provider_model = {"fast": "up-fast", "balanced": "up-balanced", "powerful": "up-powerful"}
    tier = {"fast-1": "fast", "balanced-1": "balanced", "powerful-1": "powerful"}[usage.model]
    assert attempt.name == f"chat {provider_model[tier]}"
    attributes = dict(attempt.attributes)
    response_id = attributes.pop(names.GEN_AI_RESPONSE_ID)
    assert re.fullmatch(r"msg_req_fake_\d+", response_id)
    assert attributes == {
        names.GEN_AI_OPERATION_NAME: "chat",
        names.GEN_AI_PROVIDER_NAME: "anthropic",
        names.PROVIDER: "upstream",
        names.GEN_AI_REQUEST_MODEL: provider_model[tier],
        names.GEN_AI_REQUEST_MAX_TOKENS: outcome.case.request.max_tokens,
        names.GEN_AI_RESPONSE_MODEL: RESPONSE_MODEL,
        names.GEN_AI_RESPONSE_FINISH_REASONS: ("end_turn",),
        names.GEN_AI_USAGE_INPUT_TOKENS: usage.input_tokens,
        names.GEN_AI_USAGE_OUTPUT_TOKENS: usage.output_tokens,
        names.SERVER_ADDRESS: "127.0.0.1",
        names.MODEL: usage.model,
    }
    assert (usage.input_tokens, usage.output_tokens) == (ANSWER.input_tokens, ANSWER.output_tokens)
    assert attempt.status_code == STATUS_UNSET


def test_response_ids_differ_per_attempt(exported: Exported) -> None:
    ids = [
        a.attributes[names.GEN_AI_RESPONSE_ID]
        for name in GENERATED
        for a in exported[name].attempts
        if names.GEN_AI_RESPONSE_ID in a.attributes
    ]
    assert len(ids) == len(set(ids)) == len(GENERATED)


@pytest.mark.parametrize("name", [*GENERATED, "route-only"])
def test_route_span_carries_the_decision(exported: Exported, name: str) -> None:
    outcome = exported[name]
    decision = outcome.decision
    assert decision is not None
    route = outcome.route.attributes
    assert route[names.TENANT] == "acme"
    assert route[names.REQUEST_ID] == decision.request_id
    assert route[names.STRATEGY] == decision.strategy
    assert route[names.MODEL] == decision.model
    assert route[names.TIER] == decision.tier
    assert route[names.REASON] == decision.reason
    assert route[names.ESTIMATED_COST] == decision.estimated_cost_micros
    assert route[names.BUDGET_REMAINING] == decision.budget_remaining_micros
    # The request's own target, else the tenant's from the configuration.
    hints = outcome.case.request.hints
    target = hints.latency_target_ms if hints.HasField("latency_target_ms") else 5000
    assert route[names.LATENCY_TARGET] == target
    assert route[names.CANDIDATES] == tuple(
        f"{c.model} {c.tier} excluded: {c.excluded_reason}"
        if c.excluded_reason
        else f"{c.model} {c.tier} {c.score:.3f}"
        for c in decision.candidates
    )
    signals = {k: v for k, v in route.items() if k.startswith(names.SIGNAL_PREFIX)}
    assert signals == {names.SIGNAL_PREFIX + k: v for k, v in decision.signals.items()}
    assert outcome.route.status_code == STATUS_UNSET


def test_strategy_signals_reach_the_route_span(exported: Exported) -> None:
    route = exported["cost"].route.attributes
    assert route[names.SIGNAL_PREFIX + "cost.estimated_micros"] > 0


@pytest.mark.parametrize("name", GENERATED)
def test_budget_hold_and_settle_are_recorded_with_their_amounts(
    exported: Exported, name: str
) -> None:
    outcome = exported[name]
    assert outcome.decision is not None
    assert outcome.total is not None
    holds = events(outcome.route, names.EVENT_BUDGET_HOLD)
    [settle] = events(outcome.route, names.EVENT_BUDGET_SETTLE)
    assert holds[0] == {names.AMOUNT: outcome.decision.estimated_cost_micros}
    assert settle == {names.AMOUNT: outcome.total.cost_micros}
    assert outcome.total.cost_micros == sum(u.cost_micros for u in outcome.usage) > 0
    # After a fallback the hold is raised once per extra candidate, and before a hedge once
    # to cover both attempts at once; never lowered.
    assert len(holds) == 1 + len(outcome.fallbacks) + len(outcome.hedges)
    assert [h[names.AMOUNT] for h in holds] == sorted(h[names.AMOUNT] for h in holds)


def test_route_only_holds_no_budget(exported: Exported) -> None:
    route = exported["route-only"].route
    assert route.events == ()


def test_a_fallback_is_an_event_between_a_failed_and_a_successful_attempt(
    exported: Exported,
) -> None:
    outcome = exported["fallback"]
    [fallback] = events(outcome.route, names.EVENT_FALLBACK)
    assert fallback[names.FROM_MODEL] == "fast-1"
    assert fallback[names.TO_MODEL] == "balanced-1"
    assert fallback[names.ERROR] == outcome.fallbacks[0].error
    assert fallback[names.ERROR].startswith("overloaded:")
    failed, answered = outcome.attempts
    assert (failed.name, answered.name) == ("chat up-fast", "chat up-balanced")
    assert failed.status_code == STATUS_ERROR
    assert failed.attributes[names.ERROR_TYPE] == "overloaded"
    assert names.GEN_AI_RESPONSE_ID not in failed.attributes
    assert answered.status_code == STATUS_UNSET
    assert names.ERROR_TYPE not in answered.attributes
    # The route span's events in the order they happened.
    assert [e.name for e in outcome.route.events] == [
        names.EVENT_BUDGET_HOLD,
        names.EVENT_BUDGET_HOLD,
        names.EVENT_FALLBACK,
        names.EVENT_BUDGET_SETTLE,
    ]


def test_a_hedge_is_an_event_naming_the_late_model_its_hedge_and_the_winner(
    exported: Exported,
) -> None:
    outcome = exported["hedge"]
    [wire] = outcome.hedges
    assert (wire.from_model, wire.to_model, wire.winner) == ("fast-1", "balanced-1", "balanced-1")
    assert wire.after_ms >= HEDGE_AFTER_MS
    [hedge] = events(outcome.route, names.EVENT_HEDGE)
    assert hedge == {
        names.FROM_MODEL: "fast-1",
        names.TO_MODEL: "balanced-1",
        names.AFTER_MS: wire.after_ms,
        names.WINNER: "balanced-1",
    }
    # Both attempts are children of the route span: the late one cancelled, never answered.
    by_model = {a.attributes[names.MODEL]: a for a in outcome.attempts}
    late, hedged = by_model["fast-1"], by_model["balanced-1"]
    assert (late.name, hedged.name) == ("chat up-fast", "chat up-balanced")
    assert names.GEN_AI_RESPONSE_ID not in late.attributes
    assert late.attributes.get(names.GEN_AI_USAGE_INPUT_TOKENS, 0) == 0
    assert late.status_code == STATUS_UNSET, "losing a race is not a failure"
    assert hedged.attributes[names.GEN_AI_USAGE_OUTPUT_TOKENS] == ANSWER.output_tokens
    # The late model never sent its headers, so only the hedge used (and was billed) anything.
    assert [u.model for u in outcome.usage] == ["balanced-1"]
    assert [e.name for e in outcome.route.events] == [
        names.EVENT_BUDGET_HOLD,
        names.EVENT_BUDGET_HOLD,  # raised to cover both attempts before the hedge starts
        names.EVENT_HEDGE,
        names.EVENT_BUDGET_SETTLE,
    ]


def test_hedges_and_fallbacks_are_counted_in_the_exported_metrics(exported: Exported) -> None:
    receiver = exported.receiver
    hedged = point(
        **{names.FROM_MODEL: "fast-1", names.TO_MODEL: "balanced-1", names.WINNER: "balanced-1"}
    )
    assert receiver.sums(names.METRIC_HEDGES) == {hedged: 1}
    fell_back = point(**{names.FROM_MODEL: "fast-1", names.TO_MODEL: "balanced-1"})
    assert receiver.sums(names.METRIC_FALLBACKS) == {fell_back: 1}
    assert receiver.sums(names.METRIC_ESCALATIONS) == {}, "no case here runs a cascade"


@pytest.mark.parametrize(
    ("name", "route_error"), [("invalid", "InvalidRequest"), ("budget", "BudgetExceeded")]
)
def test_a_refused_call_marks_its_spans_failed(
    exported: Exported, name: str, route_error: str
) -> None:
    outcome = exported[name]
    code = outcome.case.refused
    assert code is not None
    server, route = outcome.server, outcome.route
    assert server.status_code == STATUS_ERROR
    assert server.attributes[names.ERROR_TYPE] == code.name
    assert server.attributes[names.RPC_GRPC_STATUS_CODE] == code.value[0]
    assert route.status_code == STATUS_ERROR
    assert route.attributes[names.ERROR_TYPE] == route_error
    assert route.status_message, "the status says why"
    assert events(route, names.EVENT_BUDGET_HOLD) == []
    assert outcome.attempts == []


def test_the_resource_names_the_service_from_otel_service_name(
    exported: Exported,
) -> None:
    assert {s.resource["service.name"] for s in exported.spans} == {SERVICE_NAME}


def test_prompt_and_answer_text_are_never_exported(exported: Exported) -> None:
    assert len(exported.spans) > len(CASES)
    for span in exported.spans:
        for value in text_values(span):
            assert PROMPT_MARKER not in value, f"prompt text in {span.name}"
            assert ANSWER_MARKER not in value, f"answer text in {span.name}"


async def test_record_content_puts_prompt_and_answer_on_the_attempt_span() -> None:
    async with OtlpReceiver() as receiver, FakeAnthropic(default=ANSWER) as fake:
        running = await start_traced(receiver.endpoint, fake, record_content=True)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                stub = router_pb2_grpc.RouterServiceStub(channel)
                outcome = await call(stub, BY_NAME["pin-model"])
        finally:
            await running.stop(grace_s=1)
        [attempt] = [s for s in receiver.spans() if s.kind == CLIENT]
    assert outcome.code == grpc.StatusCode.OK
    assert json.loads(str(attempt.attributes[names.GEN_AI_INPUT_MESSAGES])) == [
        {"role": "user", "parts": [{"type": "text", "content": f"hello {PROMPT_MARKER}"}]}
    ]
    assert json.loads(str(attempt.attributes[names.GEN_AI_OUTPUT_MESSAGES])) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": f"{ANSWER_MARKER} and more"}],
            "finish_reason": "end_turn",
        }
    ]


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_an_unreachable_collector_leaves_serving_unaffected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Exports fail and are retried in the background; calls do not wait for them, and shutdown
    gives up on them after SHUTDOWN_TIMEOUT_S instead of retrying for about 20 s."""
    monkeypatch.setattr(setup, "SHUTDOWN_TIMEOUT_S", 1.0)
    async with FakeAnthropic(default=ANSWER) as fake:
        endpoint = f"http://127.0.0.1:{closed_port()}"
        running = await start_traced(endpoint, fake, metrics=True)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
                stub = router_pb2_grpc.RouterServiceStub(channel)
                started = time.monotonic()
                for _ in range(5):  # spans pile up while every export attempt is refused
                    outcome = await call(stub, BY_NAME["pin-tier"])
                    assert outcome.code == grpc.StatusCode.OK
                    assert outcome.total is not None
                    assert outcome.total.output_tokens == 9
                elapsed = time.monotonic() - started
        finally:
            stopping = time.monotonic()
            await running.stop(grace_s=1)
            stop_s = time.monotonic() - stopping
    assert elapsed < 3, f"5 calls took {elapsed:.1f} s with the collector down"
    assert stop_s < 2.5, f"shutdown took {stop_s:.1f} s with the collector down"


# Escalations (F4), on the embedded default configuration: its simulated claude-haiku-4-5 states
# a confidence per prompt, 0.36 for SPAM (below the cascade's 0.8, so claude-sonnet-4-6 answers,
# at 0.87) and 0.84 for URGENT (accepted). A manual clock: the simulated pacing takes no time.
