"""The circuit breaker's telemetry helpers on their own (F10, F22, F24): the span event and the
transition counter, read through in-memory exporters."""

from __future__ import annotations

from datetime import UTC, datetime

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from fareway.routing.breaker import CircuitState, Transition
from fareway.telemetry import names
from fareway.telemetry.metrics import Metrics
from fareway.telemetry.tracing import record_circuit_transition
from tests.telemetry.test_metrics import points

OPENED = Transition(
    "fast-1",
    CircuitState.CLOSED,
    CircuitState.OPEN,
    open_until=datetime(2026, 1, 15, 12, 0, 30, 250_000, tzinfo=UTC),
    cause="overloaded: Overloaded",
)
PROBING = Transition("fast-1", CircuitState.OPEN, CircuitState.HALF_OPEN)


def test_a_transition_is_an_event_on_the_given_span() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    span = provider.get_tracer("test").start_span(names.ROUTE_SPAN)

    record_circuit_transition(span, OPENED)
    record_circuit_transition(span, PROBING)
    span.end()

    [finished] = exporter.get_finished_spans()
    assert [e.name for e in finished.events] == [names.EVENT_CIRCUIT] * 2
    opened, probing = (dict(e.attributes or {}) for e in finished.events)
    assert opened == {
        names.MODEL: "fast-1",
        names.CIRCUIT_FROM: "closed",
        names.CIRCUIT_TO: "open",
        names.CIRCUIT_OPEN_UNTIL: "2026-01-15T12:00:31Z",  # rounded up, never early
        names.ERROR: "overloaded: Overloaded",
    }
    assert probing == {
        names.MODEL: "fast-1",
        names.CIRCUIT_FROM: "open",
        names.CIRCUIT_TO: "half_open",
    }


def test_transitions_are_counted_by_model_and_states() -> None:
    reader = InMemoryMetricReader()
    metrics = Metrics(MeterProvider([reader]).get_meter("test"))

    metrics.record_circuit_transition("fast-1", "closed", "open")
    metrics.record_circuit_transition("fast-1", "half_open", "open")
    metrics.record_circuit_transition("fast-1", "closed", "open")

    found = points(reader, names.METRIC_CIRCUIT_TRANSITIONS)
    counts = {
        (
            p.attributes[names.MODEL],
            p.attributes[names.CIRCUIT_FROM],
            p.attributes[names.CIRCUIT_TO],
        ): p.value
        for p in found
    }
    assert counts == {("fast-1", "closed", "open"): 2, ("fast-1", "half_open", "open"): 1}


def test_a_transition_describes_itself_in_one_log_line() -> None:
    assert OPENED.describe() == (
        "circuit of model fast-1: closed -> open until 2026-01-15T12:00:31Z "
        "after overloaded: Overloaded"
    )
    assert PROBING.describe() == "circuit of model fast-1: open -> half_open"
