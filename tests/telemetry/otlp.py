"""A real OTLP/gRPC receiver on loopback, and the received spans and metrics in a form tests
can read.

The receiver is the collector's own service definitions (`TraceService/Export` and
`MetricsService/Export` from opentelemetry-proto) on a `grpc.aio` server, so what a test sees is
exactly what fareway's exporters put on the wire: protobuf spans, attributes as `AnyValue`s, ids
as bytes, metric data points.

    async with OtlpReceiver() as receiver:
        ...  # point OTEL_EXPORTER_OTLP_ENDPOINT at receiver.endpoint, serve, flush
        route = one(receiver.spans(), name="route")
        [fallback] = events(route, "fareway.fallback")
        counts = receiver.sums("fareway.fallbacks")
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import grpc
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1 import trace_pb2

SERVER = trace_pb2.Span.SpanKind.SPAN_KIND_SERVER
CLIENT = trace_pb2.Span.SpanKind.SPAN_KIND_CLIENT
INTERNAL = trace_pb2.Span.SpanKind.SPAN_KIND_INTERNAL
STATUS_ERROR = trace_pb2.Status.StatusCode.STATUS_CODE_ERROR
STATUS_UNSET = trace_pb2.Status.StatusCode.STATUS_CODE_UNSET


@dataclass(frozen=True)
class Event:
    """A span event as received: its name and decoded attributes."""

    name: str
    attributes: Mapping[str, Any]


@dataclass(frozen=True)
class Span:
    """A span as received, ids as lowercase hex ("" for a root span's parent)."""

    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: Mapping[str, Any]
    events: tuple[Event, ...]
    status_code: int
    status_message: str
    resource: Mapping[str, Any]
    start_time_unix_nano: int = 0


def events(span: Span, name: str) -> list[Mapping[str, Any]]:
    """The attributes of each event called `name` on `span`, in the order they were recorded.

    The one way tests read decision events (fallback, escalation, hedge, budget hold and settle),
    so a new kind of event is checked by naming it here, nothing else."""
    return [event.attributes for event in span.events if event.name == name]


def one(spans: Iterable[Span], **match: Any) -> Span:
    """The only span whose fields equal `match` (e.g. `name="route"`); fails otherwise."""
    found = [s for s in spans if all(getattr(s, k) == v for k, v in match.items())]
    assert len(found) == 1, f"expected one span with {match}, got {[s.name for s in found]}"
    return found[0]


def children(spans: Iterable[Span], parent: Span) -> list[Span]:
    """The spans whose parent is `parent`, in the order they started."""
    return [s for s in spans if s.parent_span_id == parent.span_id]


def text_values(span: Span) -> list[str]:
    """Every string anywhere in a span: its name, status, attributes, events and resource."""
    found = [span.name, span.status_message]
    mappings: list[Mapping[str, Any]] = [span.attributes, span.resource]
    mappings += [event.attributes for event in span.events]
    found += [event.name for event in span.events]
    for mapping in mappings:
        for key, value in mapping.items():
            found.append(key)
            values = value if isinstance(value, tuple) else (value,)
            found += [v for v in values if isinstance(v, str)]
    return found


class _Collector(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []

    async def Export(
        self,
        request: trace_service_pb2.ExportTraceServiceRequest,
        context: grpc.aio.ServicerContext,
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self.requests.append(request)
        return trace_service_pb2.ExportTraceServiceResponse()


class _MetricsCollector(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self) -> None:
        self.requests: list[metrics_service_pb2.ExportMetricsServiceRequest] = []

    async def Export(
        self,
        request: metrics_service_pb2.ExportMetricsServiceRequest,
        context: grpc.aio.ServicerContext,
    ) -> metrics_service_pb2.ExportMetricsServiceResponse:
        self.requests.append(request)
        return metrics_service_pb2.ExportMetricsServiceResponse()


Attributes = frozenset[tuple[str, Any]]
"""A data point's attributes, hashable: look one up with `point(...)`."""


def point(**attributes: Any) -> Attributes:
    """The key of a data point in `OtlpReceiver.sums` (attribute names may contain dots, so
    pass them as `point(**{"fareway.model": "m"})`)."""
    return frozenset(attributes.items())


class OtlpReceiver:
    """An OTLP/gRPC trace and metrics endpoint on 127.0.0.1 (a free port) that keeps every
    export."""

    def __init__(self) -> None:
        self._collector = _Collector()
        self._metrics = _MetricsCollector()
        self._server = grpc.aio.server()
        add_servicer = trace_service_pb2_grpc.add_TraceServiceServicer_to_server
        add_servicer(self._collector, self._server)  # type: ignore[no-untyped-call]
        add_metrics = metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server
        add_metrics(self._metrics, self._server)  # type: ignore[no-untyped-call]
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    @property
    def endpoint(self) -> str:
        """The value for OTEL_EXPORTER_OTLP_ENDPOINT."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def exports(self) -> int:
        """How many Export calls arrived."""
        return len(self._collector.requests)

    def spans(self) -> list[Span]:
        """Every span received so far, in arrival order."""
        return [
            _span(span, _attributes(resource_spans.resource.attributes))
            for request in self._collector.requests
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]

    def sums(self, name: str) -> dict[Attributes, float]:
        """The latest value of each data point of the sum (counter) metric `name`, keyed by
        its attributes (`point(...)`); {} when none was exported. Counters are exported
        cumulative, so the latest export holds each point's total."""
        found: dict[Attributes, float] = {}
        for request in self._metrics.requests:
            for resource_metrics in request.resource_metrics:
                for scope_metrics in resource_metrics.scope_metrics:
                    for metric in scope_metrics.metrics:
                        if metric.name != name or metric.WhichOneof("data") != "sum":
                            continue
                        for data_point in metric.sum.data_points:
                            key = frozenset(_attributes(data_point.attributes).items())
                            kind = data_point.WhichOneof("value")
                            found[key] = getattr(data_point, kind) if kind else 0
        return found

    async def __aenter__(self) -> Self:
        await self._server.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._server.stop(grace=None)


def _span(span: trace_pb2.Span, resource: Mapping[str, Any]) -> Span:
    return Span(
        name=span.name,
        kind=span.kind,
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex(),
        attributes=_attributes(span.attributes),
        events=tuple(Event(e.name, _attributes(e.attributes)) for e in span.events),
        status_code=span.status.code,
        status_message=span.status.message,
        resource=resource,
        start_time_unix_nano=span.start_time_unix_nano,
    )


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(v) for v in value.array_value.values)
    if kind is None:
        return None
    return getattr(value, kind)
