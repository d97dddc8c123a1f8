"""The LLM classifier (strategy `classifier`) through the real server, the real `anthropic` SDK
and the loopback Anthropic fake as the cheap model: it answers a route name, garbage, an error
or nothing in time, and each ends as the strategy's docstring says (that route; the default
route; the semantic strategy's own answer), with the classifier's call held and settled on the
tenant's budget, traced as a `chat` span under the route span, and, on a streamed request,
shown as a `usage` that `done.total` counts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pydantic import TypeAdapter

from fareway.budgets.registry import MemoryLedgerConfig
from fareway.config.loader import load_config
from fareway.core.clock import SystemClock
from fareway.routing.strategies import StrategyConfig
from fareway.telemetry import names
from fareway.telemetry.setup import Telemetry
from fareway.v1 import router_pb2
from tests.fakes.anthropic_server import Answer, FakeAnthropic
from tests.fakes.http_server import Hang, HttpError
from tests.server.harness import TENANT_KEY, Harness, make_config, metadata, user_request
from tests.server.test_semantic_accuracy import labelled

AUTH = metadata(TENANT_KEY)
PROMPT = "Is this message spam or not: 'You won a free cruise, click here'"
CLASSIFIER_MODEL = "up-fast"  # fast-1's upstream id: the cheap model asked
TIMEOUT_S = 0.5  # the classifier's; the stall case waits this long, by design

STRATEGIES: dict[str, dict[str, Any]] = {
    "semantic": {
        "type": "semantic",
        "threshold": 0.05,
        "default": "code",
        "routes": {
            "code": {"target": "balanced", "examples": ["write a python function", "fix my bug"]},
            "classification": {
                "target": "fast",
                "examples": ["is this spam or not", "classify the sentiment of this review"],
            },
        },
    },
    "classifier": {
        "type": "classifier",
        "model": "fast-1",
        "routes_from": "semantic",
        "timeout_s": TIMEOUT_S,
    },
}


@dataclass
class Served:
    harness: Harness
    fake: FakeAnthropic
    spans: InMemorySpanExporter

    async def spent_and_reserved(self) -> tuple[int, int]:
        [day] = (await self.harness.ledger.state("acme")).limits
        return day.spent_micros, day.reserved_micros

    def chat_spans(self) -> list[ReadableSpan]:
        return [s for s in self.spans.get_finished_spans() if s.name.startswith("chat ")]

    def route_span(self) -> ReadableSpan:
        [route] = [s for s in self.spans.get_finished_spans() if s.name == names.ROUTE_SPAN]
        return route


@pytest.fixture
async def served(serve: Any) -> AsyncIterator[Served]:
    async with FakeAnthropic() as fake:
        config = make_config(provider="upstream", base_url=fake.base_url)
        parse = TypeAdapter(StrategyConfig).validate_python
        strategies = {**config.strategies, **{n: parse(s) for n, s in STRATEGIES.items()}}
        spans = InMemorySpanExporter()
        tracer = TracerProvider()
        tracer.add_span_processor(SimpleSpanProcessor(spans))
        telemetry = Telemetry.from_providers(tracer, MeterProvider(), False)
        harness = await serve(
            config.model_copy(update={"strategies": strategies}),
            clock=SystemClock(),
            telemetry=telemetry,
        )
        yield Served(harness, fake, spans)


def classifier_cost(answer: Answer) -> int:
    return answer.input_tokens * 1 + answer.output_tokens * 5  # fast-1: $1 in, $5 out per Mtok


async def route(served: Served) -> router_pb2.RouteDecision:
    decision: router_pb2.RouteDecision = await served.harness.router.Route(
        user_request(PROMPT, strategy="classifier"), metadata=AUTH
    )
    return decision


async def test_a_route_name_picks_that_route_and_the_call_is_billed_and_traced(
    served: Served,
) -> None:
    answer = Answer(chunks=("classification",), input_tokens=90, output_tokens=2)
    served.fake.script(answer)

    decision = await route(served)

    assert decision.model == "fast-1"
    assert "the classifier fast-1 answered 'classification'" in decision.reason
    assert decision.signals["classifier.answered"] == 1.0
    [asked] = served.fake.requests
    assert asked.body["model"] == CLASSIFIER_MODEL
    assert "classification" in str(asked.body["system"])
    assert await served.spent_and_reserved() == (classifier_cost(answer), 0)
    [chat] = served.chat_spans()
    assert chat.parent is not None
    assert chat.parent.span_id == served.route_span().context.span_id


async def test_an_answer_that_is_no_route_name_goes_to_the_default_route(served: Served) -> None:
    answer = Answer(chunks=("banana",), input_tokens=90, output_tokens=1)
    served.fake.script(answer)

    decision = await route(served)

    assert decision.model == "balanced-1"  # the default route, code
    assert "answered 'banana', not a route: the default route 'code'" in decision.reason
    assert decision.signals["classifier.answered"] == 0.0
    assert await served.spent_and_reserved() == (classifier_cost(answer), 0)


async def test_an_error_falls_back_to_the_semantic_answer(served: Served) -> None:
    served.fake.script(HttpError(500, "api_error", "boom"))

    decision = await route(served)

    assert decision.model == "fast-1"  # semantic: the classification route
    assert "the classifier fast-1 gave no answer (overloaded" in decision.reason
    assert "semantic route 'classification'" in decision.reason
    assert await served.spent_and_reserved() == (0, 0)
    [chat] = served.chat_spans()
    assert chat.attributes is not None
    assert chat.attributes["error.type"] == "overloaded"


async def test_a_stall_times_out_closes_the_call_and_falls_back_to_the_semantic_answer(
    served: Served,
) -> None:
    served.fake.script(Hang())

    decision = await route(served)

    assert decision.model == "fast-1"
    assert f"gave no answer (timeout: no answer within {TIMEOUT_S:g} s)" in decision.reason
    [asked] = served.fake.requests
    assert await asked.wait_disconnected(), "the stalled call was closed"
    assert await served.spent_and_reserved() == (0, 0)


async def test_a_streamed_request_shows_the_classifier_call_as_usage_in_its_total(
    served: Served,
) -> None:
    classified = Answer(chunks=("classification",), input_tokens=90, output_tokens=2)
    answered = Answer(chunks=("Spam.",), input_tokens=20, output_tokens=3)
    served.fake.script(classified, answered)

    events = [
        e
        async for e in served.harness.router.Generate(
            user_request(PROMPT, strategy="classifier"), metadata=AUTH
        )
    ]

    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[:2] == ["decision", "usage"], "the classifier's call, billed before the answer"
    usage = [e.usage for e in events if e.WhichOneof("event") == "usage"]
    assert [u.model for u in usage] == ["fast-1", "fast-1"]
    assert usage[0].cost_micros == classifier_cost(classified)
    done = events[-1].done
    assert done.total.cost_micros == sum(u.cost_micros for u in usage)
    assert await served.spent_and_reserved() == (done.total.cost_micros, 0)


async def test_on_the_labelled_set_a_classifier_that_answers_right_routes_every_request_right(
    serve: Any,
) -> None:
    """The embedded default's classifier, its cheap model the loopback fake answering each
    request's right route name: the route names reach the right tiers (docs/ROUTING.md)."""
    queries = labelled()
    async with FakeAnthropic() as fake:
        config = load_config()
        anthropic = config.providers["anthropic"].model_copy(update={"base_url": fake.base_url})
        config = config.model_copy(
            update={
                "providers": {**config.providers, "anthropic": anthropic},
                "ledger": MemoryLedgerConfig(type="memory"),
            }
        )
        env = {"FAREWAY_DEMO_KEY": "demo", "ANTHROPIC_API_KEY": "sk-fake"}
        harness = await serve(config, clock=SystemClock(), env=env)
        fake.script(*(Answer(chunks=(q["route"],), output_tokens=1) for q in queries))

        tiers = []
        for query in queries:
            decision = await harness.router.Route(
                user_request(query["text"], strategy="classifier"), metadata=metadata("demo")
            )
            tiers.append(decision.tier)

    assert [q["tier"] for q in queries] == tiers
    assert len(fake.requests) == len(queries)
