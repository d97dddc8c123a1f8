"""Which exporters the standard OTEL_* variables select (F23), and what is refused."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import pytest
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
    OTLPMetricExporter as GrpcMetricExporter,
)
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
    OTLPSpanExporter as GrpcSpanExporter,
)
from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
    OTLPMetricExporter as HttpMetricExporter,
)
from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
    OTLPSpanExporter as HttpSpanExporter,
)
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter
from opentelemetry.sdk.trace.export import ConsoleSpanExporter

from fareway.core.errors import StartupError
from fareway.telemetry import setup
from fareway.telemetry.setup import Telemetry, configure_telemetry

# Nothing listens here; exporters are built, never reach it, and are shut down quickly.
NOWHERE = "http://127.0.0.1:9"

Configure = Callable[[Mapping[str, str]], Awaitable[Telemetry]]


@pytest.fixture
async def configure() -> AsyncIterator[Configure]:
    """`await configure(env)`: configure_telemetry, shut down at the end of the test."""
    built: list[Telemetry] = []

    async def build(env: Mapping[str, str]) -> Telemetry:
        telemetry = configure_telemetry(env)
        built.append(telemetry)
        return telemetry

    yield build
    for telemetry in built:
        await telemetry.shutdown(timeout_s=0.5)


def span_exporter_kind(telemetry: Telemetry) -> type | None:
    if not telemetry.span_exporters:
        return None
    [exporter] = telemetry.span_exporters
    return type(exporter)


@pytest.mark.parametrize(
    ("env", "spans", "metrics"),
    [
        pytest.param({}, None, None, id="nothing by default"),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": NOWHERE},
            GrpcSpanExporter,
            GrpcMetricExporter,
            id="an endpoint means otlp over grpc",
        ),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": NOWHERE},
            GrpcSpanExporter,
            None,
            id="a traces endpoint exports traces only",
        ),
        pytest.param(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": NOWHERE,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
            },
            HttpSpanExporter,
            HttpMetricExporter,
            id="http/protobuf picks the http exporters",
        ),
        pytest.param(
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": NOWHERE,
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
            },
            GrpcSpanExporter,
            HttpMetricExporter,
            id="a signal's own protocol wins",
        ),
        pytest.param(
            {"OTEL_TRACES_EXPORTER": "console", "OTEL_METRICS_EXPORTER": "console"},
            ConsoleSpanExporter,
            ConsoleMetricExporter,
            id="console",
        ),
        pytest.param(
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_METRICS_EXPORTER": "none"},
            GrpcSpanExporter,
            None,
            id="otlp named explicitly, metrics off",
        ),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": NOWHERE, "OTEL_TRACES_EXPORTER": "none"},
            None,
            GrpcMetricExporter,
            id="none wins over an endpoint",
        ),
    ],
)
async def test_exporters_follow_the_otel_variables(
    configure: Configure,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    spans: type | None,
    metrics: type | None,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # where the SDK's exporters read the endpoint

    telemetry = await configure(env)

    assert span_exporter_kind(telemetry) is spans
    metric_exporter = setup._metric_exporter(env)  # what configure_telemetry gave its reader
    assert (type(metric_exporter) if metric_exporter else None) is metrics
    if metric_exporter is not None:
        metric_exporter.shutdown()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param(
            {"OTEL_TRACES_EXPORTER": "zipkin"},
            "OTEL_TRACES_EXPORTER=zipkin: fareway supports otlp, console, none",
            id="traces exporter",
        ),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": NOWHERE, "OTEL_METRICS_EXPORTER": "prometheus"},
            "OTEL_METRICS_EXPORTER=prometheus: fareway supports otlp, console, none",
            id="metrics exporter",
        ),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": NOWHERE, "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"},
            "OTEL_EXPORTER_OTLP_PROTOCOL=http/json: fareway supports grpc, http/protobuf",
            id="protocol",
        ),
        pytest.param(
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc-web"},
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=grpc-web: fareway supports grpc, http/protobuf",
            id="a signal's protocol",
        ),
        pytest.param(
            {"OTEL_BSP_SCHEDULE_DELAY": "soon"},
            "OTEL_BSP_SCHEDULE_DELAY=soon: must be a whole number",
            id="a batch setting the SDK would log a traceback for",
        ),
        pytest.param(
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TIMEOUT": "10s"},
            "OTEL_EXPORTER_OTLP_TIMEOUT=10s: must be a number",
            id="an exporter timeout the SDK would crash on",
        ),
        pytest.param(
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"},
            "OTEL_EXPORTER_OTLP_COMPRESSION=zstd: fareway's grpc OTLP supports gzip",
            id="a grpc compression the SDK would crash on",
        ),
        pytest.param(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://[::1"},
            "OTLP traces exporter: Invalid IPv6 URL (see the OTEL_EXPORTER_OTLP_* variables)",
            id="an endpoint the SDK cannot parse",
        ),
    ],
)
def test_an_unsupported_value_is_a_startup_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)  # where the SDK's exporters read theirs

    with pytest.raises(StartupError) as caught:
        configure_telemetry(env)

    assert str(caught.value) == message


@pytest.mark.parametrize(
    "env",
    [
        pytest.param({"OTEL_TRACES_EXPORTER": ""}, id="empty is unset"),
        pytest.param({"OTEL_TRACES_EXPORTER": " None "}, id="case and spaces do not matter"),
        pytest.param(
            {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_PROTOCOL": ""},
            id="an empty protocol is unset",
        ),
    ],
)
async def test_values_are_read_as_the_specification_says(
    configure: Configure, env: dict[str, str]
) -> None:
    telemetry = await configure(env)

    assert span_exporter_kind(telemetry) is None


async def test_service_name_and_record_content(configure: Configure) -> None:
    default = await configure({})
    named = configure_telemetry({"OTEL_SERVICE_NAME": "router-eu"}, record_content=True)
    try:
        assert default.tracer_provider.resource.attributes["service.name"] == "fareway"
        assert default.tracing.record_content is False
        assert named.tracer_provider.resource.attributes["service.name"] == "router-eu"
        assert named.tracing.record_content is True
    finally:
        await named.shutdown(timeout_s=0.5)
