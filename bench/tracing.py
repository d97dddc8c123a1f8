"""Tracing overhead per request: the same Generate calls untraced, traced, and with no tracer.

The real server runs in-process on loopback, its models served by `sim` at zero latency, so
the router's own work is all there is to measure. N streamed Generate calls are shared by C
concurrent clients (each waits for its stream to end before the next); each cell is the median
of several runs, each on a fresh server:

- `noop`: the OpenTelemetry API's no-op tracer: no span objects at all (and no trace ids).
- `untraced`: fareway's default with no OTEL_* variables: the SDK creates, fills and ends every
  span (decisions carry real trace ids), then drops it; nothing is exported.
- `traced`: OTLP over gRPC through the BatchSpanProcessor, with the SDK's default batch
  settings, to a receiver on loopback in this process. The receiver takes each export as raw
  bytes (no decoding on the serving path) and counts the spans after the run.

Metrics are recorded the same way in every mode (an SDK meter provider with no reader), so the
differences are tracing alone. Ratios compare each mode with `untraced` in the same invocation.

A second table isolates the span work: one request's worth of the same `Tracing` calls the
server makes (server span, route span with a real decision, hold and settle events, one
attempt span), in a loop with no gRPC around it, as wall and CPU microseconds per request.

    python bench/tracing.py                       # 2,000 calls; concurrency 1 and 16; 3 runs
    python bench/tracing.py --requests 5000 --concurrency 1 4 16 64 --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from collections.abc import Sequence
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
import opentelemetry.sdk.version
from opentelemetry import trace
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.sdk.metrics import MeterProvider
from sim_config import sim_config  # this folder: see sim_config's docstring

from fareway.config.schema import FarewayConfig
from fareway.core.clock import SystemClock
from fareway.routing.decision import Decision
from fareway.routing.router import TenantPolicy
from fareway.server.app import RunningServer, start_server
from fareway.server.convert import decode_request
from fareway.server.runtime import build_runtime
from fareway.telemetry.metrics import Metrics
from fareway.telemetry.setup import INSTRUMENTATION_NAME, Telemetry, configure_telemetry
from fareway.telemetry.tracing import Tracing, record_budget_hold, record_budget_settle
from fareway.v1 import router_pb2, router_pb2_grpc

MODES = ("noop", "untraced", "traced")
KEY = "bench-key"
EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


@dataclass(frozen=True)
class Options:
    requests: int
    concurrency: tuple[int, ...]
    runs: int
    answer_tokens: int
    modes: tuple[str, ...]
    isolated: int  # iterations of the span work alone; 0 skips that table


@dataclass(frozen=True)
class Result:
    median_ms: float
    per_second: float
    cpu_us: float  # process CPU time (every thread: server, client, exporter) per call
    spans_received: int  # traced mode only


def parse_args(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(
        prog="python bench/tracing.py",
        description=(
            "Measure what tracing costs a fareway request: median latency and throughput of "
            "streamed Generate calls against the in-process server (sim models, zero latency) "
            "with a no-op tracer, untraced (spans made, not exported) and traced (OTLP/gRPC "
            "to a loopback receiver), printed as a markdown table with ratios to untraced."
        ),
    )
    parser.add_argument("--requests", type=int, default=2_000, help="calls per run (2000)")
    parser.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        default=[1, 16],
        help="concurrent clients sharing the calls; one column group each (1 16)",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per cell; the median (3)")
    parser.add_argument(
        "--answer-tokens", type=int, default=20, help="text chunks per streamed answer (20)"
    )
    parser.add_argument(
        "--modes", nargs="+", choices=MODES, default=list(MODES), help="what to measure (all)"
    )
    parser.add_argument(
        "--isolated",
        type=int,
        default=20_000,
        help="requests' worth of span work measured alone, per mode; 0 skips it (20000)",
    )
    args = parser.parse_args(argv)
    if args.runs < 1 or min(args.concurrency) < 1 or args.requests < max(args.concurrency):
        parser.error("need --runs >= 1, --concurrency >= 1, --requests >= the largest concurrency")
    modes = tuple(m for m in MODES if m in args.modes or m == "untraced")
    return Options(
        args.requests,
        tuple(args.concurrency),
        args.runs,
        args.answer_tokens,
        modes,
        args.isolated,
    )


class Receiver:
    """An OTLP/gRPC trace endpoint on its own threads that keeps each export's raw bytes."""

    def __init__(self) -> None:
        self.payloads: list[bytes] = []
        handler = grpc.unary_unary_rpc_method_handler(self._export)  # bytes in, bytes out
        service = grpc.method_handlers_generic_handler(
            "opentelemetry.proto.collector.trace.v1.TraceService", {"Export": handler}
        )
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        self._server.add_generic_rpc_handlers((service,))
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()

    def _export(self, payload: bytes, context: Any) -> bytes:
        self.payloads.append(payload)
        return b""  # an empty ExportTraceServiceResponse

    def spans(self) -> int:
        """Spans received so far (decoded now, off the measured path)."""
        total = 0
        for payload in self.payloads:
            request = trace_service_pb2.ExportTraceServiceRequest.FromString(payload)
            for resource in request.resource_spans:
                total += sum(len(scope.spans) for scope in resource.scope_spans)
        return total

    def stop(self) -> None:
        self._server.stop(grace=None)


class _NoOpTracerProvider(trace.NoOpTracerProvider):
    """The API's no-op provider, with the SDK provider's flush and shutdown (no-ops too)."""

    def force_flush(self) -> bool:
        return True

    def shutdown(self) -> None:
        pass


def telemetry_for(mode: str, receiver: Receiver | None, queue: int = 0) -> Telemetry:
    """The telemetry a mode runs with; `traced` is configured as a deployment would be, with
    the batch queue enlarged to `queue` spans when asked (0: the SDK's default, 2048)."""
    if mode == "noop":
        meter_provider = MeterProvider()
        return Telemetry(
            _NoOpTracerProvider(),  # type: ignore[arg-type]
            meter_provider,
            Tracing(trace.NoOpTracer()),
            Metrics(meter_provider.get_meter(INSTRUMENTATION_NAME)),
        )
    if mode == "untraced":
        return configure_telemetry({})
    assert receiver is not None
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.port}",
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_METRICS_EXPORTER": "none",
    }
    if queue:
        env["OTEL_BSP_MAX_QUEUE_SIZE"] = str(queue)
    os.environ.update(env)  # the OTLP exporter reads its endpoint from the process environment
    try:
        return configure_telemetry(env)
    finally:
        for name in env:
            del os.environ[name]


async def run_once(config: FarewayConfig, mode: str, requests: int, concurrency: int) -> Result:
    """Serve `requests` Generate calls from `concurrency` clients on a fresh server."""
    receiver = Receiver() if mode == "traced" else None
    telemetry = telemetry_for(mode, receiver)
    runtime = await build_runtime(config, SystemClock(), {"BENCH_KEY": KEY}, telemetry=telemetry)
    running: RunningServer = await start_server(runtime, "127.0.0.1", 0)
    latencies: list[float] = []
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = router_pb2_grpc.RouterServiceStub(channel)
            metadata = (("authorization", f"Bearer {KEY}"),)
            request = router_pb2.GenerateRequest(
                messages=[router_pb2.Message(role=router_pb2.ROLE_USER, content="Tell me a fact")],
                max_tokens=200,
            )

            async def one() -> float:
                started = time.perf_counter()
                async for _ in stub.Generate(request, metadata=metadata):
                    pass
                return time.perf_counter() - started

            for _ in range(min(200, requests)):  # warm-up: connections, caches, first spans
                await one()

            async def client(count: int) -> None:
                for _ in range(count):
                    latencies.append(await one())

            shares = [
                requests // concurrency + (1 if n < requests % concurrency else 0)
                for n in range(concurrency)
            ]
            started, cpu_started = time.perf_counter(), time.process_time()
            await asyncio.gather(*(client(share) for share in shares))
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
    finally:
        await running.stop(grace_s=5)  # flushes the traced mode's spans
    spans = 0
    if receiver is not None:
        spans = receiver.spans()
        receiver.stop()
    return Result(
        statistics.median(latencies) * 1000, requests / elapsed, cpu / requests * 1e6, spans
    )


async def span_work(config: FarewayConfig, mode: str, iterations: int) -> tuple[float, float]:
    """Wall and CPU microseconds per request of the tracing calls alone (every thread's CPU,
    so the traced mode's export thread counts). The loop makes spans far faster than a server
    does, so the batch queue holds them all: every span is exported, none dropped."""
    receiver = Receiver() if mode == "traced" else None
    warm_up = min(1_000, iterations)
    telemetry = telemetry_for(mode, receiver, queue=3 * (warm_up + iterations))
    runtime = await build_runtime(config, SystemClock(), {"BENCH_KEY": KEY}, telemetry=telemetry)
    message = router_pb2.GenerateRequest(
        messages=[router_pb2.Message(role=router_pb2.ROLE_USER, content="Tell me a fact")],
        max_tokens=200,
    )
    decision = await runtime.router.decide(
        decode_request(message, "bench"), TenantPolicy(strategy="rules")
    )
    metadata = {"authorization": f"Bearer {KEY}"}
    try:
        for _ in range(warm_up):
            _one_request_of_spans(telemetry.tracing, decision, metadata)
        started, cpu_started = time.perf_counter(), time.process_time()
        for _ in range(iterations):
            _one_request_of_spans(telemetry.tracing, decision, metadata)
        await asyncio.to_thread(telemetry.tracer_provider.force_flush)  # the export is work too
        wall = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    finally:
        await runtime.aclose()
        if receiver is not None:
            receiver.stop()
    if receiver is not None and receiver.spans() != 3 * (warm_up + iterations):
        print(f"span work: {receiver.spans()} spans received, some dropped", file=sys.stderr)
    return wall / iterations * 1e6, cpu / iterations * 1e6


def _one_request_of_spans(tracing: Tracing, decision: Decision, metadata: dict[str, str]) -> None:
    """The tracing calls one answered Generate makes, in the server's order."""
    model = decision.model
    estimate = decision.estimated_cost_micros(model)
    with (
        tracing.server_span("/fareway.v1.RouterService/Generate", metadata),
        tracing.route_span("bench") as route,
    ):
        record_budget_hold(route, estimate)
        tracing.record_decision(route, decision, 10**9)
        messages = decision.request.messages
        with tracing.attempt_span(
            route, model, 200, messages, "anthropic", "api.example.com"
        ) as attempt:
            tracing.finish_attempt(
                attempt,
                response_model=model.provider_model_id,
                input_tokens=12,
                output_tokens=20,
                stop_reason="end_turn",
                response_id="msg_0123456789",
            )
        record_budget_settle(route, estimate // 2)


async def measure(options: Options) -> dict[int, dict[str, list[Result]]]:
    """Every (concurrency, mode) cell, runs interleaved across modes so drift hits all alike."""
    config = sim_config(options.answer_tokens)
    figures: dict[int, dict[str, list[Result]]] = {}
    for concurrency in options.concurrency:
        figures[concurrency] = {mode: [] for mode in options.modes}
        for run in range(options.runs):
            for mode in options.modes:
                result = await run_once(config, mode, options.requests, concurrency)
                figures[concurrency][mode].append(result)
                print(
                    f"c={concurrency} run {run + 1} {mode}: {result.median_ms:.2f} ms, "
                    f"{result.per_second:,.0f}/s, {result.cpu_us:,.0f} us CPU/call, "
                    f"{result.spans_received} spans received",
                    file=sys.stderr,
                )
    return figures


def table(figures: dict[int, dict[str, list[Result]]], options: Options) -> str:
    """Markdown: a row per concurrency and mode: median latency, calls/s and CPU per call, each
    with its ratio to untraced at the same concurrency."""
    header = ["clients", "mode", "median ms", "vs untraced", "calls/s", "vs untraced"]
    header += ["CPU µs/call", "vs untraced"]
    lines = ["| " + " | ".join(header) + " |", "|---:|---|" + "---:|" * (len(header) - 2)]
    for c in options.concurrency:
        base = _medians(figures[c]["untraced"])
        for mode in options.modes:
            cell = _medians(figures[c][mode])
            row = [str(c), mode]
            for value, reference, shape in zip(
                cell, base, ("{:.2f}", "{:,.0f}", "{:,.0f}"), strict=True
            ):
                row += [shape.format(value), f"{value / reference:.3f}"]
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _medians(results: list[Result]) -> tuple[float, float, float]:
    return (
        statistics.median(r.median_ms for r in results),
        statistics.median(r.per_second for r in results),
        statistics.median(r.cpu_us for r in results),
    )


def describe(options: Options, figures: dict[int, dict[str, list[Result]]]) -> str:
    expected = options.requests + min(200, options.requests)  # measured calls plus warm-up
    received = [r.spans_received for c in figures for r in figures[c].get("traced", [])]
    spans = f"; traced runs received {min(received):,}-{max(received):,} spans" if received else ""
    return (
        f"{options.requests} streamed Generate calls per run ({options.answer_tokens} chunks "
        f"each; {expected} calls with warm-up), median of {options.runs} runs{spans}; "
        f"Python {platform.python_version()}, grpcio {grpc.__version__}, "
        f"opentelemetry-sdk {opentelemetry.sdk.version.__version__}, {os.cpu_count()} CPUs"
    )


def isolated_table(cells: dict[str, tuple[float, float]]) -> str:
    """Markdown: per mode, the span work's wall and CPU microseconds per request."""
    lines = [
        "| mode | wall µs/request | CPU µs/request | CPU vs untraced |",
        "|---|---:|---:|---:|",
    ]
    for mode, (wall, cpu) in cells.items():
        lines.append(f"| {mode} | {wall:.1f} | {cpu:.1f} | {cpu / cells['untraced'][1]:.3f} |")
    return "\n".join(lines)


async def main(argv: Sequence[str]) -> None:
    options = parse_args(argv)
    figures = await measure(options)
    print(describe(options, figures))
    print()
    print(table(figures, options))
    if options.isolated:
        config = sim_config(options.answer_tokens)
        cells = {m: await span_work(config, m, options.isolated) for m in options.modes}
        print()
        print(f"Span work alone, {options.isolated:,} requests' worth per mode:")
        print()
        print(isolated_table(cells))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
