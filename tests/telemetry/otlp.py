"""A real OTLP/gRPC trace receiver on loopback, and the received spans in a form tests can read.

The receiver is the collector's own service definition (`TraceService/Export` from
opentelemetry-proto) on a `grpc.aio` server, so what a test sees is exactly what fareway's
exporter put on the wire: protobuf spans, attributes as `AnyValue`s, ids as bytes.

    async with OtlpReceiver() as receiver:
        ...  # point OTEL_EXPORTER_OTLP_ENDPOINT at receiver.endpoint, serve, flush
        route = one(receiver.spans(), name="route")
        [fallback] = events(route, "fareway.fallback")
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import grpc
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


class OtlpReceiver:
    """An OTLP/gRPC trace endpoint on 127.0.0.1 (a free port) that keeps every export."""

    def __init__(self) -> None:
        self._collector = _Collector()
        self._server = grpc.aio.server()
        add_servicer = trace_service_pb2_grpc.add_TraceServiceServicer_to_server
        add_servicer(self._collector, self._server)  # type: ignore[no-untyped-call]
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
