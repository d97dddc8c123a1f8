"""Metrics (F24) read through an in-memory reader after real calls to the real server.

The models live behind the loopback Anthropic fake, which reports fixed token counts, so every
figure is known exactly: tokens per attempt, which attempts failed, what the ledger billed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import TracerProvider

from fareway.core.clock import SystemClock
from fareway.telemetry import names
from fareway.telemetry.metrics import Metrics
from fareway.telemetry.setup import Telemetry
from fareway.v1 import router_pb2
from tests.fakes.anthropic_server import Answer, FakeAnthropic
from tests.fakes.http_server import HttpError
from tests.server.harness import TENANT_KEY, Harness, make_config, metadata, user_request

AUTH = metadata(TENANT_KEY)
ANSWER = Answer(chunks=("Fine", "."), input_tokens=40, output_tokens=9)
CAP_MICROS = 100_000  # day_cap_usd=0.1 below
CHAT = {names.GEN_AI_OPERATION_NAME: "chat", names.GEN_AI_PROVIDER_NAME: "anthropic"}


@dataclass(frozen=True)
class Point:
    """One data point: its attributes, and the figures of its kind (value, or count and sum)."""

    attributes: Mapping[str, Any]
    value: float = 0.0
    count: int = 0
    sum: float = 0.0


def points(reader: InMemoryMetricReader, name: str) -> list[Point]:
    """The data points of metric `name`, whatever its kind; [] when it has none."""
    data = reader.get_metrics_data()
    found: list[Point] = []
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name != name:
                    continue
                for point in metric.data.data_points:
                    attributes = dict(point.attributes or {})
                    if isinstance(point, HistogramDataPoint):
                        found.append(Point(attributes, count=point.count, sum=point.sum))
                    elif isinstance(point, NumberDataPoint):
                        found.append(Point(attributes, value=point.value))
    return found


def by(found: list[Point], *keys: str) -> dict[tuple[Any, ...], Point]:
    """Points keyed by the values of some of their attributes (missing ones as None)."""
    return {tuple(p.attributes.get(k) for k in keys): p for p in found}


@dataclass
class Served:
    harness: Harness
    reader: InMemoryMetricReader
    replies: dict[str, router_pb2.CompleteResponse]


@pytest.fixture
async def served(serve: Any) -> AsyncIterator[Served]:
    """Four answered calls and a dry run: rules (fast-1), a pin (balanced-1), a fallback from
    fast-1 to balanced-1, a step (powerful-1), and Route (fast-1, nothing billed)."""
    reader = InMemoryMetricReader()
    telemetry = Telemetry.from_providers(TracerProvider(), MeterProvider([reader]), False)
    async with FakeAnthropic(default=ANSWER) as fake:
        config = make_config(provider="upstream", base_url=fake.base_url, day_cap_usd=0.1)
        harness: Harness = await serve(config, clock=SystemClock(), telemetry=telemetry)
        router = harness.router
        replies = {
            "rules": await router.Complete(user_request("classify this: a"), metadata=AUTH),
            "pin": await router.Complete(user_request("hi", model="balanced-1"), metadata=AUTH),
        }
        fake.script(HttpError(529, "overloaded_error", "Overloaded"), ANSWER)
        replies["fallback"] = await router.Complete(user_request("classify it: b"), metadata=AUTH)
        replies["steps"] = await router.Complete(
            user_request("plan", step_type="planning"), metadata=AUTH
        )
        await router.Route(user_request("classify this: c"), metadata=AUTH)
        yield Served(harness, reader, replies)


def test_the_scenario_ran_as_intended(served: Served) -> None:
    replies = served.replies
    assert [r.decision.model for r in replies.values()] == [
        "fast-1",
        "balanced-1",
        "fast-1",
        "powerful-1",
    ]
    assert [(f.from_model, f.to_model) for f in replies["fallback"].fallbacks] == [
        ("fast-1", "balanced-1")
    ]


def test_token_usage_counts_input_and_output_per_model(served: Served) -> None:
    found = by(
        points(served.reader, names.METRIC_TOKEN_USAGE),
        names.GEN_AI_REQUEST_MODEL,
        names.GEN_AI_TOKEN_TYPE,
    )
    # Answers per model: up-fast 1 (its failed attempt used nothing), up-balanced 2, up-powerful 1.
    answers = {"up-fast": 1, "up-balanced": 2, "up-powerful": 1}
    expected = {
        (model, kind): (n, n * tokens)
        for model, n in answers.items()
        for kind, tokens in (("input", ANSWER.input_tokens), ("output", ANSWER.output_tokens))
    }
    assert {key: (p.count, p.sum) for key, p in found.items()} == expected
    for (model, kind), point in found.items():
        assert point.attributes == {
            **CHAT,
            names.GEN_AI_REQUEST_MODEL: model,
            names.GEN_AI_TOKEN_TYPE: kind,
        }


def test_token_usage_matches_what_the_calls_reported(served: Served) -> None:
    found = points(served.reader, names.METRIC_TOKEN_USAGE)
    usage = [u for reply in served.replies.values() for u in reply.usage]
    kinds = {"input": "input_tokens", "output": "output_tokens"}
    for kind, field in kinds.items():
        recorded = sum(p.sum for p in found if p.attributes[names.GEN_AI_TOKEN_TYPE] == kind)
        assert recorded == sum(getattr(u, field) for u in usage)


def test_operation_duration_is_recorded_per_attempt_with_the_error_type(served: Served) -> None:
    found = by(
        points(served.reader, names.METRIC_OPERATION_DURATION),
        names.GEN_AI_REQUEST_MODEL,
        names.ERROR_TYPE,
    )
    assert {key: p.count for key, p in found.items()} == {
        ("up-fast", None): 1,
        ("up-fast", "overloaded"): 1,
        ("up-balanced", None): 2,
        ("up-powerful", None): 1,
    }
    assert all(0 < p.sum < 10 for p in found.values())
    assert found["up-fast", "overloaded"].attributes == {
        **CHAT,
        names.GEN_AI_REQUEST_MODEL: "up-fast",
        names.ERROR_TYPE: "overloaded",
    }


def test_time_to_first_chunk_only_for_attempts_that_streamed(served: Served) -> None:
    found = by(
        points(served.reader, names.METRIC_TIME_TO_FIRST_CHUNK),
        names.GEN_AI_REQUEST_MODEL,
        names.ERROR_TYPE,
    )
    assert {key: p.count for key, p in found.items()} == {
        ("up-fast", None): 1,
        ("up-balanced", None): 2,
        ("up-powerful", None): 1,
    }
    durations = by(
        points(served.reader, names.METRIC_OPERATION_DURATION),
        names.GEN_AI_REQUEST_MODEL,
        names.ERROR_TYPE,
    )
    for key, point in found.items():
        assert 0 < point.sum <= durations[key].sum, "the first chunk comes within the attempt"


async def test_cost_adds_up_to_what_the_ledger_billed(served: Served) -> None:
    found = by(points(served.reader, names.METRIC_COST), names.TENANT, names.MODEL)
    state = await served.harness.ledger.state("acme")
    assert sum(p.value for p in found.values()) == state.limits[0].spent_micros > 0
    billed: dict[tuple[str, str], int] = {}
    for reply in served.replies.values():
        for usage in reply.usage:
            key = ("acme", usage.model)
            billed[key] = billed.get(key, 0) + usage.cost_micros
    assert {key: p.value for key, p in found.items()} == billed


def test_decisions_count_by_strategy_model_and_tier(served: Served) -> None:
    found = points(served.reader, names.METRIC_DECISIONS)
    counts = {
        (p.attributes[names.STRATEGY], p.attributes[names.MODEL], p.attributes[names.TIER]): p.value
        for p in found
    }
    assert counts == {
        ("rules", "fast-1", "fast"): 3,  # two answered, one dry run
        ("pin", "balanced-1", "balanced"): 1,
        ("steps", "powerful-1", "powerful"): 1,
    }


def test_fallbacks_count_by_models(served: Served) -> None:
    [point] = points(served.reader, names.METRIC_FALLBACKS)
    assert point.attributes == {names.FROM_MODEL: "fast-1", names.TO_MODEL: "balanced-1"}
    assert point.value == 1


def test_no_escalation_without_a_cascade(served: Served) -> None:
    assert points(served.reader, names.METRIC_ESCALATIONS) == []


def test_budget_utilization_is_the_share_spent_or_held_per_tenant(served: Served) -> None:
    [point] = points(served.reader, names.METRIC_BUDGET_UTILIZATION)
    assert point.attributes == {names.TENANT: "acme"}
    # Taken right after the last answered call's hold, as its decision reported the remainder.
    last = served.replies["steps"].decision
    assert point.value == pytest.approx(1 - last.budget_remaining_micros / CAP_MICROS)
    assert 0 < point.value < 1


def test_escalations_record_the_models() -> None:
    """The helper on its own; escalations through the server are counted in
    test_otlp_export.py."""
    reader = InMemoryMetricReader()
    metrics = Metrics(MeterProvider([reader]).get_meter("test"))
    metrics.record_escalation("fast-1", "powerful-1")
    metrics.record_escalation("fast-1", "powerful-1")

    [point] = points(reader, names.METRIC_ESCALATIONS)
    assert point.attributes == {names.FROM_MODEL: "fast-1", names.TO_MODEL: "powerful-1"}
    assert point.value == 2
