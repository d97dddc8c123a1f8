"""Starting and stopping the gRPC server: services, health, reflection, signals, drain."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Mapping

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from fareway.config.schema import FarewayConfig
from fareway.core.clock import Clock, SystemClock
from fareway.server.budget_service import BudgetService
from fareway.server.interceptor import RequestInterceptor
from fareway.server.router_service import RouterService
from fareway.server.runtime import Runtime, build_runtime
from fareway.v1 import budget_pb2, budget_pb2_grpc, router_pb2, router_pb2_grpc

log = logging.getLogger(__name__)

SERVICE_NAMES = (
    router_pb2.DESCRIPTOR.services_by_name["RouterService"].full_name,
    budget_pb2.DESCRIPTOR.services_by_name["BudgetService"].full_name,
)


class RunningServer:
    """A started server and what it serves; `stop` drains it and settles what is in flight."""

    def __init__(
        self,
        server: grpc.aio.Server,
        port: int,
        runtime: Runtime,
        health: health.aio.HealthServicer,
    ) -> None:
        self.server = server
        self.port = port
        self.runtime = runtime
        self._health = health

    async def stop(self, grace_s: float | None = None) -> None:
        """Refuse new calls, let in-flight ones finish for `grace_s`, cancel the rest."""
        for name in ("", *SERVICE_NAMES):
            await self._health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        grace = self.runtime.config.server.grace_s if grace_s is None else grace_s
        await self.server.stop(grace)
        await self.runtime.aclose()


async def start_server(runtime: Runtime, host: str, port: int) -> RunningServer:
    """Serve `runtime` on host:port (port 0 picks a free one) and return once listening."""
    settings = runtime.config.server
    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
    ]
    interceptor = RequestInterceptor(
        runtime.keys,
        runtime.clock,
        runtime.telemetry.tracing,
        max_request_bytes=settings.max_request_bytes,
    )
    server = grpc.aio.server(interceptors=[interceptor], options=options)
    router_pb2_grpc.add_RouterServiceServicer_to_server(RouterService(runtime), server)
    budget_pb2_grpc.add_BudgetServiceServicer_to_server(BudgetService(runtime), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port}")
    await server.start()
    return RunningServer(server, bound, runtime, health_servicer)


async def serve(
    config: FarewayConfig,
    env: Mapping[str, str],
    host: str | None = None,
    port: int | None = None,
    clock: Clock | None = None,
    *,
    config_path: str | None = None,
    allow_demo_keys_on_network: bool = False,
) -> None:
    """Run until SIGINT or SIGTERM, then drain gracefully. SIGHUP re-reads `config_path` (None:
    the embedded default). Raises StartupError, with a one-line message, when it cannot start;
    serving a non-loopback address while the public demo keys are accepted is refused unless
    `allow_demo_keys_on_network`."""
    runtime = await build_runtime(config, clock or SystemClock(), env)
    running = await start_server(
        runtime, host or config.server.host, config.server.port if port is None else port
    )
    for model in runtime.catalog.models:
        provider = runtime.providers[model.provider]
        log.info(
            "model %s (%s tier) via %s%s",
            model.id,
            model.tier,
            model.provider,
            " [simulated]" if provider.simulated else "",
        )
    log.info("fareway listening on %s:%d", host or config.server.host, running.port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        log.info("shutting down: draining in-flight calls")
    finally:
        await running.stop()
