"""Starting and stopping the gRPC server: services, health, reflection, TLS, signals, drain,
and configuration reload on SIGHUP (`server.reload`)."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import socket
from collections.abc import Mapping
from contextlib import suppress

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from fareway.config.schema import FarewayConfig
from fareway.core.clock import Clock, SystemClock
from fareway.core.errors import StartupError
from fareway.server.admission import Admission
from fareway.server.auth import KeyRing, guard_demo_keys
from fareway.server.budget_service import BudgetService
from fareway.server.interceptor import RequestInterceptor
from fareway.server.ledger_health import report_ledger_health
from fareway.server.reflection import enable_reflection
from fareway.server.reload import PerCallServicer, Reloader, Serving
from fareway.server.router_service import RouterService
from fareway.server.runtime import Runtime, build_runtime
from fareway.server.tls import ServerTls, read_tls
from fareway.v1 import budget_pb2, budget_pb2_grpc, router_pb2, router_pb2_grpc

log = logging.getLogger(__name__)

MIB = 1024 * 1024
SERVICE_NAMES = (
    router_pb2.DESCRIPTOR.services_by_name["RouterService"].full_name,
    budget_pb2.DESCRIPTOR.services_by_name["BudgetService"].full_name,
)


class RunningServer:
    """A started server and what it serves; `stop` drains it and settles what is in flight.
    `serving` holds the current runtime (a reload swaps it), `tls` the TLS credentials,
    `admission` the process's count of streams in flight."""

    def __init__(
        self,
        server: grpc.aio.Server,
        port: int,
        serving: Serving,
        health: health.aio.HealthServicer,
        tls: ServerTls | None = None,
        admission: Admission | None = None,
    ) -> None:
        self.server = server
        self.port = port
        self.serving = serving
        self.tls = tls
        self.admission = admission
        self._health = health

    @property
    def runtime(self) -> Runtime:
        """The runtime new calls get."""
        return self.serving.current

    async def stop(self, grace_s: float | None = None) -> None:
        """Refuse new calls, let in-flight ones finish for `grace_s`, cancel the rest."""
        # NOT_SERVING for good: a ledger coming back during the drain must not turn it back.
        await self._health.enter_graceful_shutdown()
        grace = self.runtime.config.server.grace_s if grace_s is None else grace_s
        await self.server.stop(grace)
        await self.serving.aclose()


async def start_server(
    runtime: Runtime, host: str, port: int, *, reuse_port: bool = False
) -> RunningServer:
    """Serve `runtime` on host:port (port 0 picks a free one) and return once listening, with
    TLS when the configuration has `server.tls`. A port in use is a StartupError, unless
    `reuse_port`: then several servers that all ask for it share the port (SO_REUSEPORT) and
    the kernel spreads connections among them, as workers of one deployment should."""
    settings = runtime.config.server
    tls = ServerTls(await asyncio.to_thread(read_tls, settings.tls)) if settings.tls else None
    options = [
        # Above max_request_bytes, which the interceptor enforces with a status naming it:
        # gRPC's own refusal (RESOURCE_EXHAUSTED, no detail) is for what is far larger.
        ("grpc.max_receive_message_length", settings.max_request_bytes + MIB),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        # gRPC turns SO_REUSEPORT on by default: a second server would then share the port and
        # take half its connections, with a ledger of its own, instead of failing to start.
        ("grpc.so_reuseport", int(reuse_port)),
        ("grpc.keepalive_time_ms", 30_000),
        ("grpc.keepalive_timeout_ms", 10_000),
        ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
        ("grpc.keepalive_permit_without_calls", 1),
    ]
    serving = Serving(runtime)
    # One count for the process, whatever reloads do; its bound is the current configuration's.
    admission = Admission(lambda: serving.current.config.server.max_streams, runtime.clock)
    interceptor = RequestInterceptor(
        runtime.keys,
        runtime.clock,
        runtime.telemetry.tracing,
        max_request_bytes=settings.max_request_bytes,
        admission=admission,
    )
    server = grpc.aio.server(interceptors=[interceptor], options=options)
    router_pb2_grpc.add_RouterServiceServicer_to_server(
        PerCallServicer(serving, RouterService), server
    )
    budget_pb2_grpc.add_BudgetServiceServicer_to_server(
        PerCallServicer(serving, BudgetService), server
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    # From here on the health check also follows the ledger: NOT_SERVING while it is down.
    await report_ledger_health(runtime.ledger, health_servicer, ("", *SERVICE_NAMES))
    enable_reflection(server, (*SERVICE_NAMES, health.SERVICE_NAME))
    bound = await _listen(server, host, port, tls)
    await server.start()
    return RunningServer(server, bound, serving, health_servicer, tls, admission)


async def _listen(server: grpc.aio.Server, host: str, port: int, tls: ServerTls | None) -> int:
    """Add the port; StartupError saying why when it cannot be bound."""
    bare = host.strip("[]")
    address = f"[{bare}]:{port}" if ":" in bare else f"{bare}:{port}"  # IPv6 in brackets
    try:
        if tls is None:
            bound: int = server.add_insecure_port(address)
        else:
            bound = server.add_secure_port(address, tls.credentials)
    except RuntimeError:  # gRPC's "Failed to bind", which does not say why
        bound = 0
    if bound == 0:
        await server.stop(None)
        raise StartupError(f"cannot listen on {address}: {await _bind_failure(host, port)}")
    return bound


async def _bind_failure(host: str, port: int) -> str:
    """Why gRPC could not bind: found by binding a plain socket the way gRPC does."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host.strip("[]"), port, type=socket.SOCK_STREAM
        )
    except OSError as error:
        return f"cannot resolve {host}: {error.strerror or error}"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            reason = error.strerror or str(error)
            return reason[:1].lower() + reason[1:]
    return "the address cannot be bound"


async def serve(
    config: FarewayConfig,
    env: Mapping[str, str],
    host: str | None = None,
    port: int | None = None,
    clock: Clock | None = None,
    *,
    config_path: str | None = None,
    allow_demo_keys_on_network: bool = False,
    reuse_port: bool = False,
) -> None:
    """Run until SIGINT or SIGTERM, then drain gracefully. SIGHUP re-reads `config_path` (None:
    the embedded default). Raises StartupError, with a one-line message, when it cannot start;
    serving a non-loopback address while the public demo keys are accepted is refused unless
    `allow_demo_keys_on_network`. `reuse_port`: share the port with the other workers of
    `fareway serve --workers` (`server.workers`) instead of refusing a port in use."""
    host = host or config.server.host
    port = config.server.port if port is None else port
    # Before anything is opened: refusing must leave no ledger file or connection behind.
    guard_demo_keys(
        KeyRing.from_config(config, env), host, allow_on_network=allow_demo_keys_on_network
    )
    # Handlers first: a signal that arrives while starting must not kill the process (SIGHUP's
    # default) or be lost.
    stop, reload = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    handled = {signal.SIGINT: stop.set, signal.SIGTERM: stop.set, signal.SIGHUP: reload.set}
    for sig, handler in handled.items():
        loop.add_signal_handler(sig, handler)
    try:
        runtime = await build_runtime(config, clock or SystemClock(), env)
        try:
            running = await start_server(runtime, host, port, reuse_port=reuse_port)
        except BaseException:
            await runtime.aclose()
            raise
        _log_started(running, host)
        freeze_start_up_objects()
        reloader = Reloader(
            running.serving, config_path, env, host, running.tls, allow_demo_keys_on_network
        )
        reloading = asyncio.create_task(_reload_when_asked(reloader, reload))
        try:
            await stop.wait()
            log.info("shutting down: draining in-flight calls")
        finally:
            reloading.cancel()
            with suppress(asyncio.CancelledError):
                await reloading
            await running.stop()
    finally:
        for sig in handled:
            loop.remove_signal_handler(sig)


def freeze_start_up_objects() -> None:
    """Move what start-up made (modules, configuration, catalog, SDK clients, the embedders'
    tables) out of the garbage collector's sight: they live as long as the process, and the
    collections that requests' short-lived objects trigger would otherwise walk them all, every
    time (see docs/BENCHMARKS.md, "Overhead beside a bare relay")."""
    gc.collect()
    gc.freeze()


async def _reload_when_asked(reloader: Reloader, asked: asyncio.Event) -> None:
    """Reload each time `asked` is set, one reload at a time: a SIGHUP during a reload is
    served by one more reload after it."""
    while True:
        await asked.wait()
        asked.clear()
        await reloader.reload()


def _log_started(running: RunningServer, host: str) -> None:
    runtime = running.runtime
    for model in runtime.catalog.models:
        provider = runtime.providers[model.provider]
        log.info(
            "model %s (%s tier) via %s%s",
            model.id,
            model.tier,
            model.provider,
            " [simulated]" if provider.simulated else "",
        )
    security = ""
    if running.tls is not None:
        security = " (TLS, client certificates required)" if running.tls.mutual else " (TLS)"
    log.info("fareway listening on %s:%d%s, pid %d", host, running.port, security, os.getpid())
