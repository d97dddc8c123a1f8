"""Build the tracer and meter providers from the standard OTEL_* environment variables (F23).

Exporters: OTEL_TRACES_EXPORTER / OTEL_METRICS_EXPORTER = `otlp`, `console` or `none`; when
unset, `otlp` if an OTLP endpoint variable is set, else `none` (spans still get ids, so
decisions carry a trace id, but nothing is sent). OTLP speaks gRPC unless
OTEL_EXPORTER_OTLP_PROTOCOL (or its TRACES/METRICS variant) says `http/protobuf`. Any other
value of these variables is a `StartupError` naming the variable and the values fareway
supports (an empty one counts as unset, as the OpenTelemetry specification asks). Endpoint,
headers, timeouts, compression, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES,
OTEL_TRACES_SAMPLER and the batch settings are read by the OpenTelemetry SDK itself, from the
process environment; the ones the SDK would crash on or answer with a logged traceback (a
timeout or batch setting that is not a number, a gRPC compression other than gzip) are checked first
and refused the same way.

Spans leave through a BatchSpanProcessor: a background thread exports them, so a slow or absent
collector never blocks a stream; export failures are logged by the SDK and otherwise ignored.
Shutdown flushes what is queued, but gives up after SHUTDOWN_TIMEOUT_S: with no collector the
OTLP exporters retry each batch for up to OTEL_EXPORTER_OTLP_TIMEOUT (10 s), which would hold
a stopping server for about 20 s.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Mapping, Sequence
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

from fareway.core.errors import StartupError
from fareway.telemetry.metrics import Metrics
from fareway.telemetry.tracing import Tracing

INSTRUMENTATION_NAME = "fareway"
SHUTDOWN_TIMEOUT_S = 5.0
_EXPORTERS = ("otlp", "console", "none")
_PROTOCOLS = ("grpc", "http/protobuf")
# Read by the SDK with int() or float(): a bad value raises, or logs a traceback and is ignored.
_WHOLE_NUMBERS = (
    "OTEL_BSP_SCHEDULE_DELAY",
    "OTEL_BSP_MAX_QUEUE_SIZE",
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    "OTEL_BSP_EXPORT_TIMEOUT",
)
_NUMBERS = (
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
    "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
)


@dataclass
class Telemetry:
    """The providers, and the fareway helpers bound to them. `span_exporters` are the exporters
    behind the providers' batch processors, kept so that shutdown can cut their retries short."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    tracing: Tracing
    metrics: Metrics
    span_exporters: tuple[SpanExporter, ...] = ()

    @classmethod
    def from_providers(
        cls,
        tracer_provider: TracerProvider,
        meter_provider: MeterProvider,
        record_content: bool,
        span_exporters: Sequence[SpanExporter] = (),
    ) -> Telemetry:
        """Bind fareway's helpers to given providers (tests pass in-memory ones)."""
        return cls(
            tracer_provider,
            meter_provider,
            Tracing(tracer_provider.get_tracer(INSTRUMENTATION_NAME), record_content),
            Metrics(meter_provider.get_meter(INSTRUMENTATION_NAME)),
            tuple(span_exporters),
        )

    async def shutdown(self, timeout_s: float | None = None) -> None:
        """Flush and stop traces and metrics side by side, in about `timeout_s` (default
        SHUTDOWN_TIMEOUT_S) at most when the collector does not answer; what is still queued
        then is dropped. The SDK calls block, so they run off the event loop."""
        if timeout_s is None:
            timeout_s = SHUTDOWN_TIMEOUT_S
        await asyncio.gather(
            self._shutdown_traces(timeout_s),
            asyncio.to_thread(self.meter_provider.shutdown, timeout_millis=timeout_s * 1000),
        )

    async def _shutdown_traces(self, timeout_s: float) -> None:
        # TracerProvider.shutdown takes no timeout: it waits for the batch thread, which may be
        # sleeping between retries of an export. Shutting the exporter down wakes it, and makes
        # it drop the rest instead of retrying.
        flushing = asyncio.ensure_future(asyncio.to_thread(self.tracer_provider.shutdown))
        done, _ = await asyncio.wait({flushing}, timeout=timeout_s)
        if not done:
            for exporter in self.span_exporters:
                await asyncio.to_thread(exporter.shutdown)
        await flushing


def configure_telemetry(env: Mapping[str, str], record_content: bool = False) -> Telemetry:
    """Providers and exporters as the OTEL_* variables in `env` ask."""
    # Every setting, then both exporters: a bad value is refused before any thread starts.
    _check_sdk_numbers(env)
    span_exporter = _span_exporter(env)
    metric_exporter = _metric_exporter(env)
    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME", "fareway")})
    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    if span_exporter is not None:
        tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
    readers = [PeriodicExportingMetricReader(metric_exporter)] if metric_exporter else []
    meter_provider = MeterProvider(readers, resource=resource, shutdown_on_exit=False)
    exporters = [span_exporter] if span_exporter is not None else []
    return Telemetry.from_providers(tracer_provider, meter_provider, record_content, exporters)


def _choice(env: Mapping[str, str], signal: str) -> str:
    variable = f"OTEL_{signal}_EXPORTER"
    kind = _setting(env, variable)
    if kind is None:
        endpoint = env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get(
            f"OTEL_EXPORTER_OTLP_{signal}_ENDPOINT"
        )
        kind = "otlp" if endpoint else "none"
    if kind not in _EXPORTERS:
        raise StartupError(f"{variable}={kind}: fareway supports {', '.join(_EXPORTERS)}")
    return kind


def _protocol(env: Mapping[str, str], signal: str) -> str:
    variable = f"OTEL_EXPORTER_OTLP_{signal}_PROTOCOL"
    protocol = _setting(env, variable)
    if protocol is None:
        variable = "OTEL_EXPORTER_OTLP_PROTOCOL"
        protocol = _setting(env, variable) or "grpc"
    if protocol not in _PROTOCOLS:
        raise StartupError(f"{variable}={protocol}: fareway supports {', '.join(_PROTOCOLS)}")
    return protocol


def _setting(env: Mapping[str, str], variable: str) -> str | None:
    """A variable's value as the OpenTelemetry specification reads enumerations: trimmed and
    case-insensitive, and empty is the same as unset."""
    value = env.get(variable, "").strip().lower()
    return value or None


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
    protocol = _protocol(env, signal)
    _check_compression(env, signal, protocol)
    module, _, name = _OTLP_EXPORTERS[(signal, protocol)].partition(":")
    exporter_class = getattr(importlib.import_module(module), name)
    try:
        return exporter_class()
    except ValueError as exc:  # the SDK parses its endpoint from the OTEL_* variables here
        raise StartupError(
            f"OTLP {signal.lower()} exporter: {exc} (see the OTEL_EXPORTER_OTLP_* variables)"
        ) from exc


def _check_sdk_numbers(env: Mapping[str, str]) -> None:
    for variable in (*_WHOLE_NUMBERS, *_NUMBERS):
        value = env.get(variable)
        if value is None:
            continue
        try:
            float(value) if variable in _NUMBERS else int(value)
        except ValueError:
            kind = "a number" if variable in _NUMBERS else "a whole number"
            raise StartupError(f"{variable}={value}: must be {kind}") from None


def _check_compression(env: Mapping[str, str], signal: str, protocol: str) -> None:
    # The gRPC exporters raise on any compression but gzip (the HTTP ones warn and go without).
    # The signal's own variable wins, so only it is checked when set.
    if protocol != "grpc":
        return
    for variable in (f"OTEL_EXPORTER_OTLP_{signal}_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION"):
        if variable in env:
            value = env[variable].strip().lower()
            if value != "gzip":
                raise StartupError(f"{variable}={value}: fareway's grpc OTLP supports gzip")
            return


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
