"""Build the tracer and meter providers from the standard OTEL_* environment variables (F23).

Exporters: OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER = `otlp`, `console` or `none`; when
unset, `otlp` if an OTLP endpoint variable is set, else `none` (spans still get ids, so
decisions carry a trace id, but nothing is sent). OTLP speaks gRPC unless
OTEL_EXPORTER_OTLP_PROTOCOL (or its TRACES/METRICS variant) says `http/protobuf`. Endpoint,
headers, timeouts, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER and the
batch settings are read by the OpenTelemetry SDK itself, from the process environment.

Spans leave through a BatchSpanProcessor: a background thread exports them, so a slow or absent
collector never blocks a stream; export failures are logged by the SDK and otherwise ignored.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    ConsoleMetricExporter,
    MetricExporter,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)

from fareway.telemetry.metrics import Metrics
from fareway.telemetry.tracing import Tracing

INSTRUMENTATION_NAME = "fareway"
_EXPORTERS = ("otlp", "console", "none")


@dataclass
class Telemetry:
    """The providers, and the fareway helpers bound to them."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    tracing: Tracing
    metrics: Metrics

    @classmethod
    def from_providers(
        cls, tracer_provider: TracerProvider, meter_provider: MeterProvider, record_content: bool
    ) -> Telemetry:
        """Bind fareway's helpers to given providers (tests pass in-memory ones)."""
        return cls(
            tracer_provider,
            meter_provider,
            Tracing(tracer_provider.get_tracer(INSTRUMENTATION_NAME), record_content),
            Metrics(meter_provider.get_meter(INSTRUMENTATION_NAME)),
        )

    async def shutdown(self) -> None:
        """Flush and stop the exporters (blocking SDK calls, so off the event loop)."""
        await asyncio.to_thread(self.tracer_provider.shutdown)
        await asyncio.to_thread(self.meter_provider.shutdown)


def configure_telemetry(env: Mapping[str, str], record_content: bool = False) -> Telemetry:
    """Providers and exporters as the OTEL_* variables in `env` ask."""
    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME", "fareway")})
    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    span_exporter = _span_exporter(env)
    if span_exporter is not None:
        tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    metric_exporter = _metric_exporter(env)
    readers = [PeriodicExportingMetricReader(metric_exporter)] if metric_exporter else []
    meter_provider = MeterProvider(readers, resource=resource, shutdown_on_exit=False)
    return Telemetry.from_providers(tracer_provider, meter_provider, record_content)


def _choice(env: Mapping[str, str], signal: str) -> str:
    kind = env.get(f"OTEL_{signal}_EXPORTER")
    if kind is None:
        endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get(
            f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"
        )
        kind = "otlp" if endpoint else "none"
    if kind not in _EXPORTERS:
        raise ValueError(f"OTEL_{signal}_EXPORTER={kind}: fareway supports {', '.join(_EXPORTERS)}")
    return kind


def _protocol(env: Mapping[str, str], signal: str) -> str:
    protocol = env.get(f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL") or env.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"
    )
    if protocol not in ("grpc", "http/protobuf"):
        raise ValueError(f"OTLP protocol {protocol!r}: fareway supports grpc and http/protobuf")
    return protocol


# Where each signal's OTLP exporter class lives, per protocol; imported only when chosen.
_OTLP_EXPORTERS = {
    ("TRACES", "grpc"): "opentelemetry.exporter.otlp.proto.grpc.trace_exporter:OTLPSpanExporter",
    ("TRACES", "http/protobuf"): (
        "opentelemetry.exporter.otlp.proto.http.trace_exporter:OTLPSpanExporter"
    ),
    ("METRICS", "grpc"): (
        "opentelemetry.exporter.otlp.proto.grpc.metric_exporter:OTLPMetricExporter"
    ),
    ("METRICS", "http/protobuf"): (
        "opentelemetry.exporter.otlp.proto.http.metric_exporter:OTLPMetricExporter"
    ),
}


def _otlp_exporter(env: Mapping[str, str], signal: str) -> Any:
    module, _, name = _OTLP_EXPORTERS[(signal, _protocol(env, signal))].partition(":")
    return getattr(importlib.import_module(module), name)()


def _span_exporter(env: Mapping[str, str]) -> SpanExporter | None:
    kind = _choice(env, "TRACES")
    if kind == "none":
        return None
    exporter: SpanExporter = (
        ConsoleSpanExporter() if kind == "console" else _otlp_exporter(env, "TRACES")
    )
    return exporter


def _metric_exporter(env: Mapping[str, str]) -> MetricExporter | None:
    kind = _choice(env, "METRICS")
    if kind == "none":
        return None
    exporter: MetricExporter = (
        ConsoleMetricExporter() if kind == "console" else _otlp_exporter(env, "METRICS")
    )
    return exporter
